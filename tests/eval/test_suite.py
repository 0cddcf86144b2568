"""The paper's suite in one command: datasets found by name in a folder, one report, read by lcpo.report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lcpo.algo.grading import Grader
from lcpo.cli import report
from lcpo.config import TinyModelConfig, compose_config, to_schema
from lcpo.config.evaluate import EvaluateConfig
from lcpo.eval.suite import find_datasets, suite_tasks
from lcpo.models.tiny import build_tiny, save_tiny
from reference_rows import json_row, verl_choice_row, write_json_list, write_parquet

L1 = ["aime2025", "math", "amc", "olympiad_bench", "aime", "gpqa", "mmlu_1000", "lsat"]
ROOT = Path(__file__).resolve().parents[2]


def _data_dir(root: Path) -> Path:
    """math as the reference's JSON list at the top; gpqa as verl rows in a per-budget folder, as it lays them out."""
    root.mkdir()
    write_json_list(root / "math.json", [json_row("What is 1+1?", "2"), json_row("What is 2+2?", "4")])
    (root / "data_512").mkdir()
    rows = [verl_choice_row("Which is prime?", ["4", "7"], "B", 512), verl_choice_row("Pick A.", ["x", "y"], "A", 512)]
    write_parquet(root / "data_512" / "gpqa.parquet", rows)
    return root


def test_datasets_are_found_by_name_and_the_missing_listed(tmp_path):
    data = _data_dir(tmp_path / "data")
    found, missing = find_datasets(data, L1)
    assert found == {"math": data / "math.json", "gpqa": data / "data_512" / "gpqa.parquet"}
    assert missing == ["aime2025", "amc", "olympiad_bench", "aime", "mmlu_1000", "lsat"]
    tasks, _ = suite_tasks(data, L1, Grader())
    assert [t.name for t in tasks] == ["math", "gpqa"] and all(p.is_choice for p in tasks[1].task.problems)
    with pytest.raises(FileNotFoundError, match="none of the suite's datasets"):
        suite_tasks(data, ["lsat"], Grader())


def test_suite_config_composes_with_the_paper_grid(tmp_path):
    model = save_tiny(*build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)),
                      tmp_path / "tiny")
    cfg = to_schema(compose_config("evaluate", ["suite=l1", f"data_dir={tmp_path}", f"models=[{model}]",
                                                f"output_dir={tmp_path}"]), EvaluateConfig)
    assert cfg.suite.datasets == L1 and cfg.grid.budgets == [512, 1024, 2048, 3600] and cfg.grid.samples == 16
    assert (cfg.rollout.temperature, cfg.rollout.top_p, cfg.grid.exact_factor) == (0.6, 0.95, 2.0)
    with pytest.raises(ValueError, match="data_dir"):
        to_schema(compose_config("evaluate", ["suite=l1", f"models=[{model}]", f"output_dir={tmp_path}"]),
                  EvaluateConfig)
    with pytest.raises(ValueError, match="s1=nope is not one of models"):
        to_schema(compose_config("evaluate", [f"models=[{model}]", "s1=nope", f"output_dir={tmp_path}"]),
                  EvaluateConfig)


@pytest.mark.slow
def test_one_command_evaluates_the_suite_and_lcpo_report_reads_it(tmp_path):
    model = save_tiny(*build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)),
                      tmp_path / "tiny")
    data, out = _data_dir(tmp_path / "data"), tmp_path / "out"
    cmd = [sys.executable, "-m", "lcpo.evaluate", "suite=l1", f"data_dir={data}",
           f"models={{l1: {model}, base: {model}}}",
           "s1=base", "grid.budgets=[36,40]", "grid.samples=1", "grid.problems=1", "grid.max_mode_cap=48",
           "grid.forced_prompt=exact",
           "progress_bar=false",
           "prompt.instruction=''", f"hydra.run.dir={out}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((out / "report.json").read_text())
    rows = saved["rows"]
    cells = {(r["model"], r["data_source"], r["mode"], r["budget"]) for r in rows}
    assert len(rows) == len(cells) == 2 * 2 * 2 * 2 + 2 * 2  # (l1, base) x datasets x modes x budgets, plus s1
    assert {r["data_source"] for r in rows} == {"math", "gpqa"} and {r["model"] for r in rows} == {"l1", "base", "s1"}
    assert saved["missing"] == ["aime2025", "amc", "olympiad_bench", "aime", "mmlu_1000", "lsat"]
    for r in rows:
        assert r["thinking_mean_tokens"] + r["mean_answer_tokens"] == pytest.approx(r["mean_tokens"])
        assert r["mean_abs_rel_error"] >= abs(r["rel_error"]) - 1e-9  # |mean error| <= mean |error|
    assert {(s["model"], s["data_source"], s["mode"]) for s in saved["summary"]} == {
        (m, d, mode) for m in ("l1", "base") for d in ("math", "gpqa") for mode in ("exact", "max")
    } | {("s1", d, "forced") for d in ("math", "gpqa")}
    assert "accuracy_slope" in (out / "report.md").read_text()
    assert (out / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(s["thinking_tokens"] + s["answer_tokens"] == s["length"] for s in samples)
    report.main([str(out), "--out", str(tmp_path / "summary")])
    summary = (tmp_path / "summary" / "summary.csv").read_text()
    assert summary.count("\n") == len(rows) + 1 and "data_source" in summary.splitlines()[0]
