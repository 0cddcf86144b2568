"""Chooses the rollout engine named in config; engines that need optional packages are imported only here."""

from __future__ import annotations

from typing import Any

import torch

from lcpo.config.rollout import RolloutConfig
from lcpo.rollout.base import RolloutEngine


def build_engine(cfg: RolloutConfig, model: torch.nn.Module, tokenizer: Any) -> RolloutEngine:
    """``rollout=hf`` (transformers generate), ``rollout=vllm`` (GPU, extra ``vllm``) or ``budget_forcing`` (s1)."""
    if cfg.name == "hf":
        from lcpo.rollout.hf import HFEngine

        return HFEngine(model, tokenizer, batch_size=cfg.batch_size)
    if cfg.name == "vllm":
        from lcpo.rollout.vllm import VLLMEngine

        return VLLMEngine(model, tokenizer, cfg)
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
        )
    raise ValueError(f"unknown rollout.name {cfg.name!r}")
