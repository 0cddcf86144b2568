"""The demo's bars on hand-made report rows: each passes on a model that controls the trade-off, and fails alone."""

from dataclasses import replace

import pytest

from lcpo.eval.acceptance import demo_bars, off_grid_budgets
from lcpo.eval.rows import EvalRow

BUDGETS = (32, 41, 50, 59, 68, 77, 86, 95)


def rows(model, mode, tokens, accuracy, over=None):
    over = over or [0.0] * len(BUDGETS)
    return [
        EvalRow(model=model, task="synthetic", mode=mode, budget=b, n=1, samples=1, k=1, accuracy=a, pass_at_k=a,
                mean_tokens=t, length_std=0.0, rel_error=(t - b) / b, over_budget_share=o, truncated_share=0.0)
        for b, t, a, o in zip(BUDGETS, tokens, accuracy, over)
    ]


def good(**change):
    """Rows of a model that passes every bar; ``change`` replaces one series: key ``model_mode``."""
    series = {
        "lcpo_exact": dict(tokens=[b + 2 for b in BUDGETS], accuracy=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]),
        "lcpo_max": dict(tokens=[25, 30, 38, 45, 52, 58, 62, 64], accuracy=[0.25, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.94]),
        "base_exact": dict(tokens=[60, 75, 85, 85, 85, 85, 85, 85], accuracy=[0.1, 0.3, 0.6, 0.9, 0.95, 0.95, 0.95, 0.95]),
        "base_max": dict(tokens=[85] * 8, accuracy=[0.96] * 8, over=[1.0] * 8),
        "s1_forced": dict(tokens=BUDGETS, accuracy=[0.15, 0.25, 0.35, 0.45, 0.55, 0.6, 0.65, 0.7]),
    }
    series.update(change)
    return [r for key, s in series.items() for r in rows(*key.split("_"), **s)]


def verdicts(report_rows, grid=None):
    return {b["bar"]: b["ok"] for b in demo_bars(report_rows, grid)}


def test_a_model_that_controls_the_trade_off_passes_every_bar():
    results = verdicts(good(), grid=(13, 10))
    assert all(ok is True for ok in results.values()), results


@pytest.mark.parametrize(
    "change, failing",
    [
        ({"lcpo_exact": dict(tokens=[34, 43, 52, 30, 70, 79, 88, 55], accuracy=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])},
         "lcpo exact: Pearson r"),
        ({"lcpo_exact": dict(tokens=[b * 1.3 for b in BUDGETS], accuracy=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])},
         "lcpo exact: mean |rel_error|"),
        ({"lcpo_exact": dict(tokens=[b + 2 for b in BUDGETS], accuracy=[0.85, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.95])},
         "accuracy at the largest - at the smallest"),
        ({"base_max": dict(tokens=[85] * 8, accuracy=[1.0] * 8, over=[1.0] * 8)}, "lcpo exact - base (max mode)"),
        ({"s1_forced": dict(tokens=BUDGETS, accuracy=[0.25, 0.3, 0.4, 0.5, 0.6, 0.6, 0.6, 0.6])}, "budget 32: lcpo"),
        ({"lcpo_max": dict(tokens=[25, 30, 38, 45, 52, 58, 62, 64], accuracy=[0.94] * 8, over=[0.0, 0.2] + [0.0] * 6)},
         "worst over_budget"),
        ({"lcpo_max": dict(tokens=[40, 30, 41, 29, 40, 31, 40, 30], accuracy=[0.94] * 8)}, "lcpo max: Pearson r"),
        ({"lcpo_max": dict(tokens=[25, 30, 38, 45, 52, 58, 62, 64], accuracy=[0.2] * 7 + [0.85])}, "lcpo max - lcpo exact"),
    ],
)
def test_each_bar_fails_on_its_own_fault(change, failing):
    results = verdicts(good(**change))
    failed = [name for name, ok in results.items() if ok is False]
    assert len(failed) == 1 and failing in failed[0], failed


def test_budgets_on_the_length_grid_are_flagged():
    assert off_grid_budgets(BUDGETS, fixed=13, line=10) == 8
    assert off_grid_budgets((33, 43, 53, 63, 73, 83), fixed=13, line=10) == 0
    on_grid = [replace(r, budget=b) for r, b in zip(good(), [33, 43, 53, 63, 73, 83, 93, 103] * 5)]
    grid_bar = next(b for b in demo_bars(on_grid, (13, 10)) if b["bar"].startswith("budgets off"))
    assert grid_bar["ok"] is False and grid_bar["value"] == 0


def test_max_mode_is_measured_against_the_best_policys_share_at_each_budget():
    over = [0.5, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    report = good(lcpo_max=dict(tokens=[25, 30, 38, 45, 52, 58, 62, 64], accuracy=[0.94] * 8, over=over))
    best = dict(zip(BUDGETS, [0.45, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    within = next(b for b in demo_bars(report, best_over=best) if b["bar"].startswith("lcpo max: over_budget"))
    assert within["ok"] and within["value"] == pytest.approx(0.05) and within["where"] == "budget 32: 0.50 vs 0.45"
    best[41] = 0.15  # 0.3 over budget at 41 is now 0.15 above the best policy's share there
    beyond = next(b for b in demo_bars(report, best_over=best) if b["bar"].startswith("lcpo max: over_budget"))
    assert not beyond["ok"] and beyond["where"].startswith("budget 41")


def test_exact_and_max_bars_read_their_own_models():
    """L1-Exact and L1-Max are two models: each mode's bars read only the model named for it."""
    report = [replace(r, model="l1-exact") for r in good() if (r.model, r.mode) == ("lcpo", "exact")]
    report += [replace(r, model="l1-max") for r in good() if (r.model, r.mode) == ("lcpo", "max")]
    report += [r for r in good() if r.model != "lcpo"]
    assert verdicts(good()) == {b["bar"]: b["ok"] for b in demo_bars(report, exact_model="l1-exact",
                                                                      max_model="l1-max")}
    broken = report + [replace(r, model="l1-exact", mode="max", mean_tokens=200.0, over_budget_share=1.0)
                       for r in report if r.model == "l1-max"]  # the exact model's max rows are not read
    assert all(b["ok"] for b in demo_bars(broken, exact_model="l1-exact", max_model="l1-max"))
