"""Pictures that do not mislead: token axes wide enough, frontiers per mode, truncation in the table."""

from __future__ import annotations

import matplotlib.pyplot as plt

from lcpo.eval import plots
from lcpo.eval.rows import EvalRow


def row(mode: str, budget: int, tokens: float, accuracy: float) -> EvalRow:
    return EvalRow(
        model="policy", task="synthetic", mode=mode, budget=budget, n=2, samples=2, k=1, accuracy=accuracy,
        pass_at_k=accuracy, mean_tokens=tokens, length_std=0.0, rel_error=0.0, over_budget_share=0.0,
        truncated_share=0.25, lengths=[budget, budget + 11],
    )


def test_a_narrow_token_range_is_not_stretched():
    fig, ax = plt.subplots()
    plots._log_tokens_axis(ax, [59.6, 61.2])
    lo, hi = ax.get_xlim()
    plt.close(fig)
    assert hi / lo >= plots.MIN_TOKEN_SPAN - 1e-9 and lo < 59.6 and hi > 61.2


def test_pareto_frontiers_are_drawn_per_mode(tmp_path, monkeypatch):
    rows = [row("exact", 32, 30, 0.5), row("exact", 64, 60, 0.7), row("max", 32, 20, 0.9), row("max", 32, 20, 0.9)]
    drawn = []
    real_plot = plt.Axes.plot

    def plot(ax, *args, **kwargs):
        drawn.append((kwargs.get("label"), list(args[0])))
        return real_plot(ax, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "plot", plot)
    plots.plot_pareto(rows, ["a", "a", "a", "b"], tmp_path / "pareto.png", title="job")
    assert ("exact: Pareto frontier", [30, 60]) in drawn  # the max row at 20 tokens does not hide the exact ones
    assert ("max: Pareto frontier", [20]) in drawn


def test_the_report_table_shows_truncation():
    table = plots.markdown_table([row("exact", 32, 30, 0.5).to_dict()], plots.REPORT_COLUMNS)
    assert "truncated_share" in table.splitlines()[0] and "0.25" in table
