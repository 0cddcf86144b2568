"""The demo's acceptance bars, computed from evaluation report rows: what "LCPO controls the trade-off" means.

Each bar is a plain dict (name, measured value, target, pass/fail), so the report stores them next to the rows they
were computed from. Pure functions over rows (:class:`EvalRow`): no models, no config.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from lcpo.algo.budgets import Mode
from lcpo.algo.metrics import pearson
from lcpo.eval.rows import EvalRow, group_rows


def bar(name: str, value: float, target: str, ok: bool, where: str = "") -> dict:
    """One bar: its measured value, the target and whether it is met; ``where`` says where a worst case was."""
    out = {"bar": name, "value": float(value), "target": target, "ok": bool(ok)}
    return {**out, "where": where} if where else out


def pick(rows: Sequence[EvalRow], model: str, mode: Mode) -> list[EvalRow]:
    """The rows of one model and mode, by budget."""
    return group_rows(rows, lambda r: (r.model, r.mode)).get((model, mode), [])


def off_grid_budgets(budgets: Sequence[int], fixed: int, line: int) -> int:
    """How many budgets no response length can meet exactly, when lengths are ``fixed + line * j`` tokens."""
    return sum((b - fixed) % line != 0 for b in budgets)


def demo_bars(
    rows: Sequence[EvalRow],
    length_grid: tuple[int, int] | None = None,
    *,
    exact_model: str = "lcpo",
    max_model: str = "lcpo",
    best_over: Mapping[int, float] | None = None,
) -> list[dict]:
    """The bars of ``make demo``: exact mode on ``exact_model``'s rows, max mode on ``max_model``'s (the paper's
    L1-Exact and L1-Max are two models), against "base" and (optionally) "s1".

    - exact mode follows the budget: Pearson r(budget, mean tokens) >= 0.95, mean |rel_error| <= 0.15;
    - the trade-off exists and is controlled: exact-mode accuracy at the largest budget beats the smallest by 0.15,
      and is within 5 points of the base model's unconstrained (max mode) accuracy at the largest budget;
    - LCPO beats s1 budget forcing by 10 points at the two smallest budgets;
    - max mode: over budget no more often than the training reward's own best policy (``best_over``: its
      over-budget share at each budget, :mod:`lcpo.eval.optimum`) plus 0.10 at every budget, or at most 10% of
      responses over budget without it; mean tokens rising with the budget (r >= 0.8); accuracy at the largest
      budget within 5 points of exact mode's.

    ``length_grid`` is ``(fixed, line)`` when response lengths move in steps (``fixed + line * j`` tokens): the
    count of evaluation budgets off that grid is then reported, since a budget on it can be met without control.
    """
    exact, maxed = pick(rows, exact_model, Mode.EXACT), pick(rows, max_model, Mode.MAX)
    base_max = pick(rows, "base", Mode.MAX)
    budgets = [r.budget for r in exact]
    r_exact = pearson(budgets, [r.mean_tokens for r in exact])
    abs_err = sum(abs(r.rel_error) for r in exact) / len(exact)
    gain = exact[-1].accuracy - exact[0].accuracy
    vs_base = exact[-1].accuracy - base_max[-1].accuracy
    r_max = pearson([r.budget for r in maxed], [r.mean_tokens for r in maxed])
    max_vs_exact = maxed[-1].accuracy - exact[-1].accuracy
    out = []
    if length_grid is not None:
        off = off_grid_budgets(budgets, *length_grid)
        residues = len({(b - length_grid[0]) % length_grid[1] for b in budgets})
        out.append(bar(f"budgets off the length grid ({length_grid[0]} + {length_grid[1]}j tokens)", off,
                       f">= 6 of {len(budgets)}, {residues} distinct residues", off >= 6 and residues > 1))
    out += [
        bar("lcpo exact: Pearson r(budget, mean tokens)", r_exact, ">= 0.95", r_exact >= 0.95),
        bar("lcpo exact: mean |rel_error|", abs_err, "<= 0.15", abs_err <= 0.15),
        bar("lcpo exact: accuracy at the largest - at the smallest budget", gain, ">= 0.15", gain >= 0.15),
        bar("largest budget: lcpo exact - base (max mode) accuracy", vs_base, ">= -0.05", vs_base >= -0.05),
    ]
    s1 = {r.budget: r.accuracy for r in rows if r.model == "s1"}
    for row in exact[:2] if s1 else []:
        gap = row.accuracy - s1.get(row.budget, float("nan"))
        out.append(bar(f"budget {row.budget}: lcpo exact - s1 accuracy", gap, ">= 0.10", gap >= 0.10))
    out += [
        over_budget_bar(maxed, best_over),
        bar("lcpo max: Pearson r(budget, mean tokens)", r_max, ">= 0.8", r_max >= 0.8),
        bar("largest budget: lcpo max - lcpo exact accuracy", max_vs_exact, ">= -0.05", max_vs_exact >= -0.05),
    ]
    return out


def over_budget_bar(maxed: Sequence[EvalRow], best_over: Mapping[int, float] | None) -> dict:
    """Max mode's over-budget share: the worst budget's excess over the best policy's share there (<= 0.10), or
    the worst share itself (<= 0.10) when no best policy is known."""
    if best_over is None:
        worst = max(r.over_budget_share for r in maxed)
        return bar("lcpo max: worst over_budget_share", worst, "<= 0.10", worst <= 0.10)
    shares = {r.budget: r.over_budget_share for r in maxed}
    budget = max(shares, key=lambda b: shares[b] - best_over[b])
    excess = shares[budget] - best_over[budget]
    return bar("lcpo max: over_budget_share - the best policy's, worst budget", excess, "<= 0.10", excess <= 0.10,
               f"budget {budget}: {shares[budget]:.2f} vs {best_over[budget]:.2f}")
