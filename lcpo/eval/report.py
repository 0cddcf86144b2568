"""The evaluation report: ``report.json`` (the rows, the curve summary, plus what the caller adds), ``report.md``
(the table, the curve summary and the correlation of length with budget) and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from lcpo.algo import metrics
from lcpo.eval import plots
from lcpo.eval.rows import EvalRow, group_rows
from lcpo.eval.summary import curve_summary, summary_markdown

PLOTS = {
    "accuracy_vs_tokens.png": plots.plot_accuracy_vs_tokens,
    "length_vs_budget.png": plots.plot_length_vs_budget,
    "length_distribution.png": plots.plot_length_distribution,
}


def write_report(
    rows: Sequence[EvalRow], out_dir: str | Path, make_plots: bool = True, extra: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Writes ``report.json`` (``{"rows": [...], "summary": [...]}`` plus the entries of ``extra``; the summary is
    :func:`lcpo.eval.summary.curve_summary`), ``report.md`` and the PNG plots; returns their paths."""
    if not rows:
        raise ValueError("no rows to report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report.json": out / "report.json", "report.md": out / "report.md"}
    report = {"rows": [r.to_dict() for r in rows], "summary": curve_summary(rows), **(extra or {})}
    paths["report.json"].write_text(json.dumps(report, indent=1) + "\n")
    paths["report.md"].write_text(report_markdown(rows))
    if make_plots:
        paths.update({name: plot(rows, out / name) for name, plot in PLOTS.items()})
    return paths


def report_markdown(rows: Sequence[EvalRow]) -> str:
    """The metrics table, the curve summary, then the correlation of length with budget per model, task and mode."""
    lines = ["# Evaluation report", "", plots.markdown_table([r.to_dict() for r in rows], plots.REPORT_COLUMNS)]
    lines.append(summary_markdown(curve_summary(rows)))
    correlations = []
    for (model, task, mode), series in group_rows(rows, lambda r: (r.model, r.task, r.mode)).items():
        budgets = [r.budget for r in series for _ in r.lengths]
        lengths = [n for r in series for n in r.lengths]
        r = metrics.pearson(budgets, lengths) if len(series) > 1 else float("nan")
        correlations.append({"model": model, "task": task, "mode": mode, "pearson_r(budget, tokens)": r})
    lines += ["## Length vs budget correlation (all samples)", ""]
    lines.append(plots.markdown_table(correlations, list(correlations[0])))
    return "\n".join(lines)
