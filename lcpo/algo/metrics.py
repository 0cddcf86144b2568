"""Metrics as pure functions: evaluation metrics over groups of completions (plain lists), and the per-step rollout
statistics of training (tensors, as sums and counts so they reduce over ranks).

Evaluation follows the L1 protocol: a "group" is the ``n`` samples drawn for one problem; accuracy is pass@1
averaged over samples and problems; the length error is the *signed* relative error of the mean length, so a
model that systematically over-thinks shows a positive error rather than hiding behind an absolute value.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from lcpo.algo.budgets import Mode


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples of which ``c`` are correct (Chen et al. 2021).

    ``1 - C(n-c, k) / C(n, k)``, computed as a running product so large ``n`` does not overflow.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over problems; ``correct[i]`` holds the per-sample correctness of problem ``i``."""
    _check_groups(correct)
    return float(np.mean([pass_at_k(len(g), int(sum(g)), k) for g in correct]))


def accuracy(correct: Sequence[Sequence[bool]]) -> float:
    """pass@1 averaged over samples and problems (equal weight per problem, as in the L1 protocol)."""
    _check_groups(correct)
    return float(np.mean([np.mean(np.asarray(g, dtype=float)) for g in correct]))


def mean_tokens(lengths: Sequence[int]) -> float:
    """Mean generated length over every sample of every problem."""
    return float(np.mean(_nonempty(lengths)))


def length_std(lengths: Sequence[int]) -> float:
    """Population standard deviation of the generated lengths (0 for a single sample)."""
    return float(np.std(_nonempty(lengths)))


def rel_error(lengths: Sequence[int], budget: int) -> float:
    """Signed relative error of the mean length: ``(mean(n_y) - N) / N``; positive means longer than asked."""
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    return (mean_tokens(lengths) - budget) / budget


def over_budget_share(lengths: Sequence[int], budget: int) -> float:
    """Share of responses strictly longer than ``budget`` (the violation rate of a Max-mode budget)."""
    return float(np.mean(_nonempty(lengths) > budget))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of two equally long sequences; NaN when either is constant (correlation undefined)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need two 1-D sequences of equal length >= 2, got shapes {a.shape} and {b.shape}")
    if a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def group_metrics(
    correct: Sequence[Sequence[bool]], lengths: Sequence[Sequence[int]], budget: int, k: int
) -> dict[str, float]:
    """Every per-cell metric of an evaluation report for one (model, task, mode, budget) cell.

    ``correct[i]`` and ``lengths[i]`` are the samples of problem ``i``; ``k`` may not exceed any problem's count.
    """
    _check_groups(correct)
    if [len(g) for g in correct] != [len(g) for g in lengths]:
        raise ValueError("correct and lengths must have the same shape (problems x samples)")
    flat = [n for group in lengths for n in group]
    return {
        "accuracy": accuracy(correct),
        "pass_at_k": mean_pass_at_k(correct, k),
        "mean_tokens": mean_tokens(flat),
        "length_std": length_std(flat),
        "rel_error": rel_error(flat, budget),
        "over_budget_share": over_budget_share(flat, budget),
    }


def _check_groups(groups: Sequence[Sequence[bool]]) -> None:
    if len(groups) == 0 or any(len(g) == 0 for g in groups):
        raise ValueError("need at least one problem with at least one sample")


def _nonempty(values: Sequence[int]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("need at least one length")
    return array


# ------------------------------------------------------------------------------------------- training rollouts

def rollout_sums(
    rewards: torch.Tensor,
    correct: torch.Tensor,
    lengths: torch.Tensor,
    budgets: torch.Tensor,
    modes: torch.Tensor,
    truncated: torch.Tensor,
    budget_range: tuple[int, int],
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every per-step rollout metric as ``(sum, count)`` over one rank's samples, to be summed over ranks.

    Sums and counts (not means) so that ranks with unequal counts reduce exactly. Besides the batch-wide and
    per-mode values, budgeted rows are bucketed by which quarter of ``budget_range`` (the budget distribution's
    smallest..largest) their budget falls in: ``bucket/<mode>/q<k>/<metric>``, so a dashboard shows whether short
    and long budgets are followed alike. ``modes`` holds :attr:`Mode.code` values.
    """
    everyone = torch.ones_like(lengths, dtype=torch.bool)
    budgeted = modes != Mode.NONE.code
    rel = (lengths - budgets) / budgets.clamp(min=1)
    over = (lengths > budgets).float()
    sums: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def add(name: str, values: torch.Tensor, mask: torch.Tensor) -> None:
        mask = mask.float()
        sums[name] = ((values.float() * mask).sum(), mask.sum())

    add("reward/mean", rewards, everyone)
    add("reward/sq", rewards**2, everyone)
    add("rollout/accuracy", correct, everyone)
    add("rollout/mean_length", lengths, everyone)
    add("rollout/truncated_share", truncated, everyone)
    add("rollout/abs_rel_error", rel.abs(), budgeted)
    add("rollout/rel_error", rel, budgeted)
    low, high = budget_range
    quarter = ((budgets - low) / max(high - low, 1) * 4).floor().clamp(0, 3).long()
    for mode in Mode:
        in_mode = modes == mode.code
        add(f"{mode}/accuracy", correct, in_mode)
        add(f"{mode}/mean_length", lengths, in_mode)
        if mode is Mode.NONE:
            continue
        add(f"{mode}/abs_rel_error", rel.abs(), in_mode)
        add(f"{mode}/rel_error", rel, in_mode)
        if mode is Mode.MAX:
            add("max/over_budget_share", over, in_mode)
        for q in range(4):
            cell = in_mode & (quarter == q)
            prefix = f"bucket/{mode}/q{q + 1}"
            add(f"{prefix}/accuracy", correct, cell)
            add(f"{prefix}/abs_rel_error", rel.abs(), cell)
            add(f"{prefix}/rel_error", rel, cell)
            add(f"{prefix}/over_budget_share", over, cell)
    return sums


def zero_signal_sums(
    rewards: torch.Tensor, group_size: int, tol: float = 1e-6
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``rollout/zero_signal_share`` as ``(sum, count)`` over one rank's groups (rows grouped contiguously): a group
    whose rewards are all equal (within ``tol``) has zero advantages, so it contributes nothing to the update."""
    groups = rewards.view(-1, group_size)
    flat = ((groups.max(-1).values - groups.min(-1).values) <= tol).float()
    return {"rollout/zero_signal_share": (flat.sum(), torch.tensor(float(flat.numel()), device=flat.device))}


def finish_sums(names: Sequence[str], totals: torch.Tensor) -> dict[str, torch.Tensor]:
    """Means from reduced ``[len(names), 2]`` (sum, count) rows; metrics without samples are left out, and
    ``reward/sq`` becomes ``reward/std``."""
    out = {name: total / count for name, (total, count) in zip(names, totals) if count > 0}
    mean_sq = out.pop("reward/sq")
    out["reward/std"] = (mean_sq - out["reward/mean"] ** 2).clamp(min=0).sqrt()
    return out
