"""Rewards: LCPO's two length-controlled rewards and the length-shaping baselines users compare them against.

Every formula is a pure function over tensors (anything ``torch.as_tensor`` accepts goes in, a float tensor of the
broadcast shape comes out), so the trainer and the tests go through the same code. The trainer holds one
:data:`Reward` built from config and calls it on a :class:`RewardInputs` batch, in which each sample carries its
own mode and budget as data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from lcpo.algo.budgets import BudgetSpec, Mode


def _t(value: Any) -> torch.Tensor:
    """A float tensor of ``value`` (float64 for Python numbers, so worked examples are exact to the printed digit)."""
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else value.float()
    return torch.as_tensor(value, dtype=torch.float64)


def lcpo_exact(correct: Any, target: Any, length: Any, alpha: float) -> torch.Tensor:
    """LCPO-Exact (paper Eq. 1): ``r = I(correct) - alpha * |target - length|``.

    No clipping: a far miss goes below -1, and wrong answers still receive the length term, so the length signal
    exists even where correctness is rare. E.g. alpha=0.0003: (1000, 1200, correct) -> 0.94; (100, 4000) -> -0.17.
    """
    c, t, n = _t(correct), _t(target), _t(length)
    return c - alpha * (t - n).abs()


def lcpo_max(correct: Any, target: Any, length: Any, alpha: float, delta: float) -> torch.Tensor:
    """LCPO-Max (paper Eq. 2): ``r = I(correct) * clip(alpha * (target - length) + delta, 0, 1)``.

    Wrong answers get 0; at the budget a correct answer earns delta, under it up to 1, over it falling to 0
    (with the published alpha 0.001 and delta 0.5: 1.0 at 500 tokens under, 0 at 500 over).
    """
    c, t, n = _t(correct), _t(target), _t(length)
    return c * torch.clamp(alpha * (t - n) + delta, 0.0, 1.0)


def dapo_overlong(correct: Any, length: Any, max_length: Any, cache_length: Any) -> torch.Tensor:
    """DAPO's soft overlong punishment added to correctness (Yu et al. 2025, Eq. 13).

    With L_max = ``max_length`` and L_cache = ``cache_length`` (published: 20480 and 4096; the trainer sets
    L_cache to ``reward.overlong_ratio`` x L_max, keeping that proportion under any cap): penalty 0 for
    length <= L_max - L_cache, ``((L_max - L_cache) - length) / L_cache`` inside the cache interval (-1 at L_max),
    -1 beyond L_max. ``r = I(correct) + penalty``.
    """
    c, n, lmax, cache_length = _t(correct), _t(length), _t(max_length), _t(cache_length)
    soft = lmax - cache_length
    penalty = torch.where(n <= soft, torch.zeros_like(n), (soft - n) / cache_length)
    penalty = torch.where(n > lmax, -torch.ones_like(n), penalty)
    return c + penalty


def cosine(
    correct: Any,
    length: Any,
    max_length: Any,
    correct_short: float,
    correct_long: float,
    wrong_short: float,
    wrong_long: float,
    exceed: float,
) -> torch.Tensor:
    """Cosine length-scaling reward (Yeo et al. 2025, "Demystifying Long CoT Reasoning"); published: 2, 1, -10, 0, -10.

    ``CosFn(t, T, a, b) = b + (a - b) * (1 + cos(pi * t / T)) / 2`` interpolates from a at t=0 to b at t=T:
    correct answers earn more when short (2 -> 1), wrong answers are punished less when long (-10 -> 0), so the
    model thinks longer only when it helps. Responses that reach ``max_length`` get ``exceed``.
    """
    c, n, T = _t(correct), _t(length), _t(max_length)
    w = (1 + torch.cos(math.pi * torch.clamp(n / T, 0.0, 1.0))) / 2
    r = torch.where(c > 0, correct_long + (correct_short - correct_long) * w, wrong_long + (wrong_short - wrong_long) * w)
    return torch.where(n >= T, torch.full_like(r, exceed), r)


def kimi_length(correct: torch.Tensor, length: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Kimi k1.5's length reward (Kimi Team 2025, Sec. 2.3.3), computed within each group of samples.

    ``lambda = 0.5 - (len - min_len) / (max_len - min_len)`` over the group; correct samples get lambda, wrong
    ones ``min(0, lambda)`` (long wrong answers are punished, short ones are not rewarded). A group whose lengths
    are all equal gets 0.
    """
    correct, length = _t(correct), _t(length)
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

    ``mode`` holds :attr:`Mode.code` values; ``budget`` is ignored where the mode is ``Mode.NONE``; ``group`` ids tie
    the G samples of one prompt together (group-relative rewards such as Kimi's need them).
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
        specs: Sequence[BudgetSpec],
        lengths: Sequence[int],
        max_length: int | Sequence[int],
        groups: Sequence[int],
    ) -> "RewardInputs":
        n = len(correct)
        caps = [max_length] * n if isinstance(max_length, int) else list(max_length)
        return cls(
            correct=torch.tensor([float(c) for c in correct]),
            mode=torch.tensor([s.mode.code for s in specs]),
            budget=torch.tensor([0 if s.budget is None else s.budget for s in specs], dtype=torch.float32),
            length=torch.tensor(lengths, dtype=torch.float32),
            max_length=torch.tensor(caps, dtype=torch.float32),
            group=torch.tensor(list(groups)),
        )


#: Scores a batch of samples: ``RewardInputs -> [N]`` float tensor.
Reward = Callable[[RewardInputs], torch.Tensor]


def by_mode(exact_rows: Reward, max_rows: Reward) -> Reward:
    """Scores budgeted rows with the given formulas by their mode; rows without a budget by correctness."""

    def score(x: RewardInputs) -> torch.Tensor:
        return torch.where(
            x.mode == Mode.EXACT.code,
            exact_rows(x),
            torch.where(x.mode == Mode.MAX.code, max_rows(x), x.correct),
        )

    return score
