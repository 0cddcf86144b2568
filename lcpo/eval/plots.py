"""Tables and figures shared by the evaluation report (``lcpo.cli.evaluate``) and the sweep report (``lcpo.cli.report``).

Everything takes report rows (:class:`lcpo.eval.rows.EvalRow`) and writes a file, so both reports draw the same
pictures the same way.
matplotlib runs on the Agg backend: no display is needed (clusters, CI).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from lcpo.eval.rows import EvalRow, group_rows  # noqa: E402

#: The columns of an evaluation table (rows in ``report.json`` also hold ``k``, ``truncated_share``, ``lengths``,
#: ``data_source`` and the thinking-token error columns); ``truncated_share`` (responses cut by the generation cap) is
#: what explains a low exact-mode accuracy. ``rel_error`` is the paper's (E[n] - N) / N;
#: ``mean_abs_rel_error`` the mean of |n - N| / N per sample; ``thinking_*`` count only the tokens before </think>.
REPORT_COLUMNS = (
    "model", "task", "mode", "budget", "n", "samples", "accuracy", "pass_at_k",
    "mean_tokens", "length_std", "rel_error", "mean_abs_rel_error", "over_budget_share", "truncated_share",
    "thinking_mean_tokens", "thinking_rel_error",
)
#: Marker and frontier line style of each budget mode (s1's forced rows included).
MODE_STYLE = {"exact": ("o", "-"), "max": ("^", "--"), "forced": ("s", ":")}
#: The narrowest span a token axis shows, as a ratio of its ends: closer points would make a 1-token difference
#: look steep.
MIN_TOKEN_SPAN = 2.0


def fmt(value: Any) -> str:
    """A table cell: floats with four significant digits, NaN and None as empty-looking dashes."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table of ``columns`` (missing cells shown as "-")."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = (fmt(row.get(c)).replace("|", "\\|") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def series_label(row: EvalRow) -> str:
    """How one curve is named in a legend: the model and the budget mode."""
    return f"{row.model} ({row.mode})"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: fewer (or equal) tokens with higher (or equal) accuracy.

    ``points`` are ``(tokens, accuracy)``; the result is sorted by tokens, i.e. it traces the frontier.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _task_axes(tasks: Sequence[str], width: float = 5.5, height: float = 4.0):
    fig, axes = plt.subplots(1, len(tasks), figsize=(width * len(tasks), height), squeeze=False)
    return fig, dict(zip(tasks, axes[0]))


def _tasks(rows: Sequence[EvalRow]) -> list[str]:
    return list(dict.fromkeys(r.task for r in rows))


def _log_tokens_axis(ax, tokens: Sequence[float]) -> None:
    """A logarithmic token axis labelled with plain numbers (70, 100, 200 rather than 7x10^1), spanning at least a
    factor of ``MIN_TOKEN_SPAN`` around the data."""
    ax.set_xscale("log")
    lo, hi = max(min(tokens), 1e-3), max(max(tokens), 1e-3)
    if hi / lo < MIN_TOKEN_SPAN:
        middle = math.sqrt(lo * hi)
        ax.set_xlim(middle / math.sqrt(MIN_TOKEN_SPAN), middle * math.sqrt(MIN_TOKEN_SPAN))
    plain = FuncFormatter(lambda x, _: f"{x:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_vs_tokens(rows: Sequence[EvalRow], path: Path) -> Path:
    """Accuracy against mean generated tokens, one curve per model and mode, one panel per task.

    The token axis is logarithmic: the L1 paper reports accuracy growing log-linearly with length.
    """
    fig, axes = _task_axes(_tasks(rows))
    for (task, label), series in group_rows(rows, lambda r: (r.task, series_label(r))).items():
        ax = axes[task]
        ax.plot([r.mean_tokens for r in series], [r.accuracy for r in series], marker="o", label=label)
    for task, ax in axes.items():
        ax.set(title=task, xlabel="mean tokens", ylabel="accuracy (pass@1)", ylim=(-0.03, 1.03))
        _log_tokens_axis(ax, [r.mean_tokens for r in rows if r.task == task])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_length_vs_budget(rows: Sequence[EvalRow], path: Path) -> Path:
    """Mean generated length against the budget with the ``y = x`` line of perfect length control."""
    fig, axes = _task_axes(_tasks(rows))
    for (task, label), series in group_rows(rows, lambda r: (r.task, series_label(r))).items():
        axes[task].plot([r.budget for r in series], [r.mean_tokens for r in series], marker="o", label=label)
    for task, ax in axes.items():
        budgets = [r.budget for r in rows if r.task == task]
        lo, hi = min(budgets), max(budgets)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
        ax.set(title=task, xlabel="budget (tokens)", ylabel="mean tokens")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_length_distribution(rows: Sequence[EvalRow], path: Path, columns: int = 3) -> Path:
    """Box plots of the generated lengths at each budget, one panel per task, model and mode.

    A short red tick marks each budget, so over- and under-shooting read directly off the boxes; outliers are
    drawn (a few responses far over budget are what a mean hides).
    """
    panels = group_rows(rows, lambda r: (r.task, series_label(r)))
    cols = min(columns, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.5 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, ((task, label), series) in zip(flat, panels.items()):
        positions = range(1, len(series) + 1)
        ax.boxplot([r.lengths for r in series], positions=list(positions), showfliers=True)
        ax.scatter(list(positions), [r.budget for r in series], marker="_", s=400, color="red", zorder=3,
                   label="budget")
        ax.legend(fontsize=7, loc="upper left")
        ax.set_xticks(list(positions), [str(r.budget) for r in series])
        ax.set(title=f"{task}: {label}", xlabel="budget", ylabel="tokens")
        ax.grid(alpha=0.3, axis="y")
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_pareto(rows: Sequence[EvalRow], labels: Sequence[str], path: Path, title: str) -> Path:
    """Accuracy against mean tokens for every row, coloured by its label (``labels[i]`` for ``rows[i]``; the
    legend is titled ``title``), marked by budget mode, with each task's Pareto frontier per mode (exact and max rows
    answer different prompts, so one frontier across them would compare unlike things).

    Frontier points (no row of the mode is both shorter and more accurate) are joined by a line and outlined. Groups
    are drawn largest first, so rows that coincide (identical jobs) show as concentric markers, not one.
    """
    label_of = {id(r): label for r, label in zip(rows, labels)}
    fig, axes = _task_axes(_tasks(rows), width=6.5, height=4.5)
    for task, ax in axes.items():
        task_rows = [r for r in rows if r.task == task]
        groups = group_rows(task_rows, lambda r: label_of[id(r)])
        colors = {value: f"C{i % 10}" for i, value in enumerate(groups)}
        for i, (value, group) in enumerate(groups.items()):
            size = 30 + 30 * (len(groups) - i)
            for mode, in_mode in group_rows(group, lambda r: r.mode).items():
                ax.scatter([r.mean_tokens for r in in_mode], [r.accuracy for r in in_mode], s=size,
                           marker=MODE_STYLE.get(mode, ("D", "-"))[0], color=colors[value], alpha=0.7,
                           edgecolors="white", linewidths=0.5)
            ax.scatter([], [], marker="o", color=colors[value], label=value)
        for mode, in_mode in group_rows(task_rows, lambda r: r.mode).items():
            marker, line = MODE_STYLE.get(mode, ("D", "-"))
            front = [in_mode[i] for i in pareto_front([(r.mean_tokens, r.accuracy) for r in in_mode])]
            ax.plot([r.mean_tokens for r in front], [r.accuracy for r in front], color="k", ls=line, lw=1,
                    marker=marker, mfc="none", ms=11, label=f"{mode}: Pareto frontier")
        ax.set(title=task, xlabel="mean tokens", ylabel="accuracy (pass@1)", ylim=(-0.03, 1.03))
        _log_tokens_axis(ax, [r.mean_tokens for r in task_rows])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title=title, title_fontsize=8)
    return _save(fig, path)
