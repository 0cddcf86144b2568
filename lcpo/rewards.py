"""Rewards: LCPO's two length-controlled rewards and the length-shaping baselines users compare them against.

Every formula is a pure function, elementwise over Python numbers or torch tensors (scalars in, float out).
The trainer holds one :class:`Reward` built from config and calls it on a :class:`RewardInputs` batch, in which
each sample carries its own mode and budget as data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch

Number = float | int | bool
Value = Number | torch.Tensor

MODE_CODES = {"exact": 0, "max": 1, "none": 2}


def _tensors(*values: Value) -> tuple[list[torch.Tensor], bool]:
    scalar = not any(isinstance(v, torch.Tensor) for v in values)
    return [torch.as_tensor(v, dtype=torch.float64 if scalar else torch.float32) for v in values], scalar


def _out(result: torch.Tensor, scalar: bool) -> Value:
    return float(result) if scalar else result


def lcpo_exact(correct: Value, target: Value, length: Value, alpha: float = 0.0003) -> Value:
    """LCPO-Exact (paper Eq. 1): ``r = I(correct) - alpha * |target - length|``.

    No clipping: a far miss goes below -1, and wrong answers still receive the length term, so the length signal
    exists even where correctness is rare. E.g. alpha=0.0003: (1000, 1200, correct) -> 0.94; (100, 4000) -> -0.17.
    """
    (c, t, n), scalar = _tensors(correct, target, length)
    return _out(c - alpha * (t - n).abs(), scalar)


def lcpo_max(correct: Value, target: Value, length: Value, alpha: float = 0.001, delta: float = 0.5) -> Value:
    """LCPO-Max (paper Eq. 2): ``r = I(correct) * clip(alpha * (target - length) + delta, 0, 1)``.

    Wrong answers get 0; at the budget a correct answer earns delta, under it up to 1, over it falling to 0
    (with the defaults: 1.0 at 500 tokens under, 0 at 500 over).
    """
    (c, t, n), scalar = _tensors(correct, target, length)
    return _out(c * torch.clamp(alpha * (t - n) + delta, 0.0, 1.0), scalar)


def correctness(correct: Value) -> Value:
    """Plain GRPO: ``r = I(correct)``; also the score of no-budget prompts in the LCPO mixture."""
    (c,), scalar = _tensors(correct)
    return _out(c, scalar)


def dapo_overlong(correct: Value, length: Value, max_length: Value, cache_length: float = 4096) -> Value:
    """DAPO's soft overlong punishment added to correctness (Yu et al. 2025, Eq. 13).

    With L_max = ``max_length`` and L_cache = ``cache_length`` (published: 20480 and 4096):
    penalty 0 for length <= L_max - L_cache, ``((L_max - L_cache) - length) / L_cache`` inside the cache
    interval, -1 beyond L_max. ``r = I(correct) + penalty``.
    """
    (c, n, lmax), scalar = _tensors(correct, length, max_length)
    soft = lmax - cache_length
    penalty = torch.where(n <= soft, torch.zeros_like(n), (soft - n) / cache_length)
    penalty = torch.where(n > lmax, -torch.ones_like(n), penalty)
    return _out(c + penalty, scalar)


def cosine(
    correct: Value,
    length: Value,
    max_length: Value,
    correct_short: float = 2.0,
    correct_long: float = 1.0,
    wrong_short: float = -10.0,
    wrong_long: float = 0.0,
    exceed: float = -10.0,
) -> Value:
    """Cosine length-scaling reward (Yeo et al. 2025, "Demystifying Long CoT Reasoning"), published defaults.

    ``CosFn(t, T, a, b) = b + (a - b) * (1 + cos(pi * t / T)) / 2`` interpolates from a at t=0 to b at t=T:
    correct answers earn more when short (2 -> 1), wrong answers are punished less when long (-10 -> 0), so the
    model thinks longer only when it helps. Responses that reach ``max_length`` get ``exceed``.
    """
    (c, n, T), scalar = _tensors(correct, length, max_length)
    w = (1 + torch.cos(math.pi * torch.clamp(n / T, 0.0, 1.0))) / 2
    r = torch.where(c > 0, correct_long + (correct_short - correct_long) * w, wrong_long + (wrong_short - wrong_long) * w)
    return _out(torch.where(n >= T, torch.full_like(r, exceed), r), scalar)


def kimi_length(correct: torch.Tensor, length: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Kimi k1.5's length reward (Kimi Team 2025, Sec. 2.3.3), computed within each group of samples.

    ``lambda = 0.5 - (len - min_len) / (max_len - min_len)`` over the group; correct samples get lambda, wrong
    ones ``min(0, lambda)`` (long wrong answers are punished, short ones are not rewarded). A group whose lengths
    are all equal gets 0.
    """
    correct, length = correct.float(), length.float()
    lam = torch.zeros_like(length)
    for g in torch.unique(group):
        idx = group == g
        lo, hi = length[idx].min(), length[idx].max()
        if hi > lo:
            lam[idx] = 0.5 - (length[idx] - lo) / (hi - lo)
    return torch.where(correct > 0, lam, torch.clamp(lam, max=0.0))


@dataclass
class RewardInputs:
    """One batch of scored samples, all ``[N]`` tensors: the reward sees each sample's own mode and budget.

    ``mode`` holds :data:`MODE_CODES`; ``budget`` is ignored where mode is "none"; ``group`` ids tie the G samples
    of one prompt together (group-relative rewards such as Kimi's need them).
    """

    correct: torch.Tensor
    mode: torch.Tensor
    budget: torch.Tensor
    length: torch.Tensor
    max_length: torch.Tensor
    group: torch.Tensor

    @classmethod
    def build(
        cls,
        correct: Sequence[bool],
        modes: Sequence[str],
        budgets: Sequence[int | None],
        lengths: Sequence[int],
        max_length: int | Sequence[int],
        groups: Sequence[int],
    ) -> "RewardInputs":
        n = len(correct)
        caps = [max_length] * n if isinstance(max_length, int) else list(max_length)
        return cls(
            correct=torch.tensor([float(c) for c in correct]),
            mode=torch.tensor([MODE_CODES[m] for m in modes]),
            budget=torch.tensor([0 if b is None else b for b in budgets], dtype=torch.float32),
            length=torch.tensor(lengths, dtype=torch.float32),
            max_length=torch.tensor(caps, dtype=torch.float32),
            group=torch.tensor(list(groups)),
        )


class Reward(Protocol):
    """Scores a batch of samples: ``RewardInputs -> [N]`` float tensor."""

    def __call__(self, x: RewardInputs) -> torch.Tensor: ...


@dataclass
class RewardConfig:
    """Which reward and its knobs (``conf/reward/*.yaml``). Each file sets the published defaults of its reward.

    ``alpha`` is the exact reward's coefficient (and the max reward's when ``name=max``); ``max_alpha`` is the
    max reward's coefficient inside ``mixed``.
    """

    name: str = "exact"
    alpha: float = 0.0003
    max_alpha: float = 0.001
    delta: float = 0.5
    cache_length: int = 4096
    kimi_coef: float = 1.0
    cosine_correct_short: float = 2.0
    cosine_correct_long: float = 1.0
    cosine_wrong_short: float = -10.0
    cosine_wrong_long: float = 0.0
    cosine_exceed: float = -10.0

    def __post_init__(self) -> None:
        if self.name not in REWARDS:
            raise ValueError(f"reward.name must be one of {sorted(REWARDS)}, got {self.name!r}")
        for key in ("alpha", "max_alpha", "kimi_coef"):
            if getattr(self, key) < 0:
                raise ValueError(f"reward.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.delta <= 1.0:
            raise ValueError(f"reward.delta must lie in [0, 1], got {self.delta}")
        if self.cache_length < 1:
            raise ValueError(f"reward.cache_length must be >= 1, got {self.cache_length}")


def _by_mode(exact_rows: Callable[[RewardInputs], torch.Tensor], max_rows: Callable[[RewardInputs], torch.Tensor]) -> Reward:
    """Scores budgeted rows with the given formulas by their mode; rows without a budget by correctness."""

    def score(x: RewardInputs) -> torch.Tensor:
        return torch.where(
            x.mode == MODE_CODES["exact"],
            exact_rows(x),
            torch.where(x.mode == MODE_CODES["max"], max_rows(x), x.correct),
        )

    return score


def _exact(alpha: float) -> Callable[[RewardInputs], torch.Tensor]:
    return lambda x: lcpo_exact(x.correct, x.budget, x.length, alpha)


def _max(alpha: float, delta: float) -> Callable[[RewardInputs], torch.Tensor]:
    return lambda x: lcpo_max(x.correct, x.budget, x.length, alpha, delta)


REWARDS: dict[str, Callable[[RewardConfig], Reward]] = {
    # exact / max score every budgeted row with their formula; mixed scores each row by its own mode (L1-Max).
    "exact": lambda c: _by_mode(_exact(c.alpha), _exact(c.alpha)),
    "max": lambda c: _by_mode(_max(c.alpha, c.delta), _max(c.alpha, c.delta)),
    "mixed": lambda c: _by_mode(_exact(c.alpha), _max(c.max_alpha, c.delta)),
    "correctness": lambda c: lambda x: x.correct.clone(),
    "dapo": lambda c: lambda x: dapo_overlong(x.correct, x.length, x.max_length, c.cache_length),
    "kimi": lambda c: lambda x: x.correct + c.kimi_coef * kimi_length(x.correct, x.length, x.group),
    "cosine": lambda c: lambda x: cosine(
        x.correct, x.length, x.max_length, c.cosine_correct_short, c.cosine_correct_long,
        c.cosine_wrong_short, c.cosine_wrong_long, c.cosine_exceed,
    ),
}

#: Rewards that read the budget; the others ignore it (length-shaping baselines or plain correctness).
BUDGET_AWARE = frozenset({"exact", "max", "mixed"})


def build_reward(cfg: RewardConfig) -> Reward:
    """The reward function named by ``cfg.name``."""
    return REWARDS[cfg.name](cfg)
