"""Chooses the rollout engine named in config; engines that need optional packages are imported only here."""

from __future__ import annotations

from typing import Any

import torch

from lcpo.rollout.base import RolloutEngine


def build_engine(cfg: Any, model: torch.nn.Module, tokenizer: Any) -> RolloutEngine:
    """``rollout=hf`` (transformers generate), ``rollout=vllm`` (GPU, extra ``vllm``) or ``budget_forcing`` (s1)."""
    if cfg.name == "hf":
        from lcpo.rollout.hf import HFEngine

        return HFEngine(model, tokenizer, batch_size=cfg.batch_size)
    if cfg.name == "vllm":
        from lcpo.rollout.vllm import VLLMEngine

        return VLLMEngine(model, tokenizer, cfg)
    if cfg.name == "budget_forcing":
        raise ValueError("rollout=budget_forcing is an evaluation baseline (s1); use it with lcpo.evaluate")
    raise ValueError(f"unknown rollout.name {cfg.name!r}")
