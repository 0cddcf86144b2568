"""Chooses the rollout engine named in config and builds it from its section; engines that need optional packages
are imported only here."""

from __future__ import annotations

from typing import Any

import torch

from lcpo.config.rollout import RolloutConfig
from lcpo.rollout.base import RolloutEngine


def build_engine(
    cfg: RolloutConfig, model: torch.nn.Module, tokenizer: Any, *, seed: int, max_new_tokens: int | None = None,
    compute_dtype: torch.dtype | None = None,
) -> RolloutEngine:
    """``rollout=hf`` (transformers, in this process), ``rollout=vllm`` (GPU, extra ``vllm``; ``rollout.vllm``) or
    ``budget_forcing`` (s1 over the HF engine; ``rollout.forcing``), sampling from the live ``model``.

    The vLLM engine is the training one: it exists only once :meth:`start` runs (the Lightning ``setup`` hook) and
    is sized for ``max_new_tokens`` (default ``cfg.max_new_tokens``); ``seed`` is the run's seed. HF generate samples
    under autocast to ``compute_dtype`` (the run's ``model.dtype``) when it is a 16-bit type.
    """
    if cfg.name == "vllm":
        from lcpo.rollout.vllm import VLLMEngine

        return VLLMEngine.colocated(model, tokenizer, cfg.vllm, max_new_tokens or cfg.max_new_tokens, seed)
    if cfg.name in ("hf", "budget_forcing"):
        from lcpo.rollout.budget_forcing import BudgetForcingEngine
        from lcpo.rollout.hf import HFEngine

        decoder = HFEngine(model, tokenizer, batch_size=cfg.batch_size, dtype=compute_dtype)
        return decoder if cfg.name == "hf" else BudgetForcingEngine(decoder, cfg.forcing)
    raise ValueError(f"unknown rollout.name {cfg.name!r}")
