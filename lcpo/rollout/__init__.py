"""Rollout engines behind one protocol: HF generate (CPU/GPU), vLLM (GPU, optional), s1 budget forcing."""

from lcpo.rollout.base import Completion, RolloutEngine, SamplingConfig

__all__ = ["Completion", "RolloutEngine", "SamplingConfig"]
