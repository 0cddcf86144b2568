"""Chooses the rollout engine named in config; engines that need optional packages are imported only here."""

from __future__ import annotations

from typing import Any

import torch

from lcpo.config.rollout import RolloutConfig
from lcpo.rollout.base import RolloutEngine


def build_engine(
    cfg: RolloutConfig, model: torch.nn.Module, tokenizer: Any, *, seed: int, max_new_tokens: int | None = None
) -> RolloutEngine:
    """``rollout=hf`` (transformers generate), ``rollout=vllm`` (GPU, extra ``vllm``) or ``budget_forcing`` (s1),
    sampling from the live ``model``.

    The vLLM engine is the training one: it exists only once :meth:`start` runs (the Lightning ``setup`` hook) and
    is sized for ``max_new_tokens`` (default ``cfg.max_new_tokens``); ``seed`` is the run's seed.
    """
    if cfg.name == "hf":
        from lcpo.rollout.hf import HFEngine

        return HFEngine(model, tokenizer, batch_size=cfg.batch_size)
    if cfg.name == "vllm":
        from lcpo.rollout.vllm import VLLMEngine

        return VLLMEngine.colocated(model, tokenizer, cfg, max_new_tokens or cfg.max_new_tokens, seed)
    if cfg.name == "budget_forcing":
        from lcpo.rollout.budget_forcing import BudgetForcingEngine

        return BudgetForcingEngine(
            model,
            tokenizer,
            batch_size=cfg.batch_size,
            max_waits=cfg.max_waits,
            wait_text=cfg.wait_text,
            answer_cue=cfg.answer_cue,
            answer_max_tokens=cfg.answer_max_tokens,
            end_at_line=cfg.end_at_line,
        )
    raise ValueError(f"unknown rollout.name {cfg.name!r}")
