"""The ``algo`` group: GRPO/LCPO optimisation (groups, PPO mini-batching and clipping, KL, entropy, AdamW)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from lcpo.config.checks import in_range, one_of, positive
from lcpo.algo.losses import AGGREGATIONS


@dataclass
class AlgoConfig:
    """GRPO/LCPO optimisation: group size, PPO mini-batching and clipping, KL, entropy, loss shape, AdamW.

    ``scale_std`` and ``adv_eps`` shape the group advantages (``lcpo.algo.losses.group_advantages``), which the rollout
    collector computes; everything else shapes the update in ``lcpo.training.update``. ``tis_cap`` turns on the truncated
    importance-sampling correction for the gap between the rollout engine and the trainer
    (``lcpo.algo.losses.tis_weights``; needs an engine that returns sampling log-probs, i.e. vLLM). An optimiser step
    whose loss or gradient is not finite is skipped; ``max_skipped_steps`` of them in a row stop the run
    (``lcpo.training.guards``). Memory knobs: a micro-batch holds at most ``micro_batch_tokens`` tokens (rows x longest row,
    padding included; a longer row goes alone), and the LM head runs on chunks of tokens whose fp32 logits take at
    most ``logit_chunk_mb`` MiB.
    """

    group_size: int = 16
    prompts_per_step: int = 128
    mini_batch_prompts: int = 64
    micro_batch_tokens: int = 32768
    logit_chunk_mb: float = 128.0
    ppo_epochs: int = 1
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.001
    entropy_coef: float = 0.001
    scale_std: bool = True
    adv_eps: float = 1e-6
    loss_agg: str = "token_mean"
    loss_constant: Optional[float] = None
    lr: float = 1e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup_steps: int = 0
    tis_cap: Optional[float] = None
    max_skipped_steps: int = 10

    def __post_init__(self) -> None:
        positive("algo.group_size", self.group_size)
        if self.scale_std and self.group_size < 2:
            raise ValueError("algo.group_size must be >= 2 when algo.scale_std is true (a std needs two samples)")
        for key in ("prompts_per_step", "mini_batch_prompts", "micro_batch_tokens", "ppo_epochs", "logit_chunk_mb"):
            positive(f"algo.{key}", getattr(self, key))
        if self.prompts_per_step % self.mini_batch_prompts:
            raise ValueError(
                f"algo.prompts_per_step ({self.prompts_per_step}) must be a multiple of "
                f"algo.mini_batch_prompts ({self.mini_batch_prompts})"
            )
        for key in ("clip_low", "clip_high", "kl_coef", "entropy_coef", "weight_decay", "grad_clip", "adv_eps"):
            positive(f"algo.{key}", getattr(self, key), allow_zero=True)
        positive("algo.lr", self.lr)
        positive("algo.warmup_steps", self.warmup_steps, allow_zero=True)
        if self.tis_cap is not None and not (self.tis_cap >= 1.0):
            raise ValueError(f"algo.tis_cap must be null (off) or >= 1, got {self.tis_cap}")
        positive("algo.max_skipped_steps", self.max_skipped_steps)
        one_of("algo.loss_agg", self.loss_agg, AGGREGATIONS)
        if self.loss_agg == "constant" and not (self.loss_constant and self.loss_constant > 0):
            raise ValueError("algo.loss_constant must be set to a positive number when algo.loss_agg=constant")
        if len(self.betas) != 2:
            raise ValueError(f"algo.betas must be two numbers in [0, 1), got {self.betas}")
        for beta in self.betas:
            in_range("algo.betas", beta, 0.0, 0.999999)

    @property
    def updates_per_step(self) -> int:
        """Optimiser steps taken on one rollout batch."""
        return self.ppo_epochs * (self.prompts_per_step // self.mini_batch_prompts)
