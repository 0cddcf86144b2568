"""Training on the reference's verl parquet with budget=from_file: each row's own budget, per-source metrics,
thinking length in the metrics and the sample table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lcpo.training.build import run
from reference_rows import verl_choice_row, verl_row, write_parquet

ROWS = [
    verl_row("What is 1+1?", "2", 12, data_source="math"),
    verl_row("What is 2+3?", "5", -20, data_source="math"),
    verl_row("What is 4+4?", "8", -1, data_source="math"),
    verl_choice_row("Which is odd?", ["4", "7"], "B", 16, source="gpqa"),
]


def _last_metrics(out: Path) -> dict:
    (path,) = (out / "csv").glob("version_*/metrics.csv")
    with path.open() as f:
        return [row for row in csv.DictReader(f) if row.get("rollout/mean_length")][-1]


@pytest.mark.slow
def test_three_steps_on_verl_rows_with_their_own_budgets(compose_train, tmp_path):
    data = write_parquet(tmp_path / "train.parquet", ROWS)
    cfg = compose_train("task=parquet", f"task.path={data}", "budget=from_file", "budget.low=4", "budget.high=40",
                        "reward=mixed", "reward.length=thinking", "trainer.max_steps=3",
                        "trainer.samples_every_n_steps=1", output_dir=tmp_path / "run")
    run(cfg)
    metrics = _last_metrics(tmp_path / "run")
    for key in ("source/math/accuracy", "source/gpqa/accuracy", "source/math/mean_length", "rollout/thinking_length",
                "rollout/answer_length", "rollout/thinking_abs_rel_error", "exact/accuracy", "max/accuracy"):
        assert metrics.get(key) not in (None, ""), key
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3 * 4
    wanted = {("exact", 12): "Think for 12 tokens.", ("max", 20): "Think for maximum 20 tokens.",
              ("none", None): None, ("exact", 16): "Think for 16 tokens."}
    for s in samples:
        sentence = wanted[(s["mode"], s["budget"])]
        assert s["prompt"].count("Think for") == (0 if sentence is None else 1)
        assert sentence is None or sentence in s["prompt"]
        assert s["thinking_tokens"] + s["answer_tokens"] == s["length"]


def test_from_file_is_refused_without_file_budgets(compose_train, tmp_path):
    with pytest.raises(ValueError, match="synthetic task has none"):
        compose_train("budget=from_file", output_dir=tmp_path)
    with pytest.raises(ValueError, match="budget.max_share/none_share must stay 0"):
        compose_train("budget=from_file", "budget.max_share=0.5", output_dir=tmp_path)
