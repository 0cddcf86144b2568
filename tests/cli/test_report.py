"""Sweep aggregation over a fake Hydra multirun folder: one table with the swept values as columns, a Pareto plot."""

from __future__ import annotations

import csv
import json

import pytest

from lcpo.cli import report
from lcpo.eval.plots import pareto_front


def fake_job(root, num: int, alpha: str, accuracies: list[float]):
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- reward.alpha={alpha}\n- +sweep=alpha\n")
    rows = [
        {"model": "policy", "task": "synthetic", "mode": "exact", "budget": b, "n": 8, "samples": 4,
         "accuracy": acc, "pass_at_k": acc, "mean_tokens": b * 1.1, "length_std": 3.0, "rel_error": 0.1,
         "over_budget_share": 0.5, "k": 4, "truncated_share": 0.0, "lengths": [b] * 32}
        for b, acc in zip((64, 128), accuracies)
    ]
    (job / "eval").mkdir()
    (job / "eval" / "report.json").write_text(json.dumps({"rows": rows}))
    (job / "val" / "step_25").mkdir(parents=True)  # the periodic validation's report: not part of the sweep table
    (job / "val" / "step_25" / "report.json").write_text(json.dumps({"rows": rows[:1]}))


def test_two_jobs_become_one_table_and_a_pareto_plot(tmp_path, capsys):
    fake_job(tmp_path, 0, "0.0001", [0.5, 0.7])
    fake_job(tmp_path, 1, "0.001", [0.6, 0.65])
    (tmp_path / "multirun.yaml").write_text("{}\n")
    report.main([str(tmp_path), "--out", str(tmp_path / "summary")])
    assert "4 rows from 2 jobs" in capsys.readouterr().out

    with (tmp_path / "summary" / "summary.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4
    assert list(table[0])[:4] == ["job", "reward.alpha", "+sweep", "model"]
    assert [(r["job"], r["reward.alpha"], r["budget"], r["accuracy"]) for r in table] == [
        ("0", "0.0001", "64", "0.5"), ("0", "0.0001", "128", "0.7"),
        ("1", "0.001", "64", "0.6"), ("1", "0.001", "128", "0.65")]
    assert "lengths" not in table[0] and table[0]["report"] == "eval/report.json"
    assert "| 1 | 0.001 | policy | synthetic |" in (tmp_path / "summary" / "summary.md").read_text()
    assert (tmp_path / "summary" / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_pareto_front_keeps_only_undominated_points():
    points = [(100, 0.5), (120, 0.4), (140, 0.7), (90, 0.5), (200, 0.7), (300, 0.9)]
    assert pareto_front(points) == [3, 2, 5]


def test_folders_without_job_reports_fail_clearly(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no Hydra jobs"):
        report.collect(tmp_path)
    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "0" / ".hydra" / "overrides.yaml").write_text("- reward=max\n")
    with pytest.raises(FileNotFoundError, match="1 Hydra jobs but no report.json"):
        report.collect(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path)])
    assert exit_info.value.code == 1 and "no report.json" in capsys.readouterr().err


def write_metrics(job, shares: list[float]) -> None:
    folder = job / "csv" / "version_0"
    folder.mkdir(parents=True)
    lines = ["step,rollout/zero_signal_share,reward/mean"] + [f"{i},{s},-0.1" for i, s in enumerate(shares)]
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_jobs_that_learned_nothing_are_named(tmp_path, capsys):
    fake_job(tmp_path, 0, "0.0001", [0.0, 0.0])
    fake_job(tmp_path, 1, "0.001", [0.5, 0.6])
    write_metrics(tmp_path / "0", [1.0, 1.0, 1.0])
    write_metrics(tmp_path / "1", [1.0, 0.75, 1.0])
    report.main([str(tmp_path)])
    printed = capsys.readouterr().out
    assert "1 job(s) learned nothing" in printed and ": 0\n" in printed
    assert "learned nothing" in (tmp_path / "summary.md").read_text()
