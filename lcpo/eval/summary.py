"""Curve metrics of an evaluation: one row per (model, data source, mode) over its budgets.

The per-cell rows say how one budget went; these say how the whole accuracy-length curve went, as the paper
compares models: the slope of accuracy against log2(mean tokens) (0.24 for L1, 0.37 for s1), the area under
accuracy against budget, the signed error of the mean length and the mean per-sample |error| over the budgets,
and the worst over-budget share (how often max mode goes over).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lcpo.algo import metrics
from lcpo.eval import plots
from lcpo.eval.rows import EvalRow, group_rows

#: The columns of the curve table, in report.md and the wandb ``summary`` table.
SUMMARY_COLUMNS = (
    "model", "data_source", "mode", "budgets", "accuracy_slope", "budget_auc", "rel_error", "mean_abs_rel_error",
    "thinking_rel_error", "max_over_budget_share",
)


def curve_summary(rows: Sequence[EvalRow]) -> list[dict[str, Any]]:
    """One row per (model, data source, mode) of ``rows`` (cells over budgets); the error columns are means over
    the budgets, ``max_over_budget_share`` the largest share of any budget."""
    out = []
    for (model, source, mode), series in group_rows(rows, lambda r: (r.model, r.data_source or r.task, r.mode)).items():
        out.append({
            "model": model, "data_source": source, "mode": mode, "budgets": len(series),
            "accuracy_slope": metrics.accuracy_slope(
                [r.mean_tokens for r in series], [r.accuracy for r in series]
            ),
            "budget_auc": metrics.budget_auc([r.budget for r in series], [r.accuracy for r in series]),
            "rel_error": _mean(series, "rel_error"),
            "mean_abs_rel_error": _mean(series, "mean_abs_rel_error"),
            "thinking_rel_error": _mean(series, "thinking_rel_error"),
            "max_over_budget_share": max(r.over_budget_share for r in series),
        })
    return out


def summary_markdown(summary: Sequence[dict[str, Any]]) -> str:
    """The curve table with a line on what its columns mean."""
    return (
        "## Curves per model, data source and mode\n\n"
        "accuracy_slope: accuracy per doubling of mean tokens; budget_auc: area under accuracy vs budget over the "
        "budget span; rel_error: (E[n] - N) / N, mean over budgets; mean_abs_rel_error: mean of |n - N| / N per "
        "sample, mean over budgets.\n\n" + plots.markdown_table(summary, SUMMARY_COLUMNS)
    )


def _mean(series: Sequence[EvalRow], key: str) -> float:
    """The mean of ``key`` over the rows that measured it (rows read from older reports hold NaN)."""
    values = [getattr(r, key) for r in series if not np.isnan(getattr(r, key))]
    return float(np.mean(values)) if values else float("nan")
