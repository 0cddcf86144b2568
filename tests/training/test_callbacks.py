"""The periodic budget-grid validation: what it computes, and a run that logs it, plots it and saves it."""

import csv
import math

import pytest

from lcpo.eval.rows import EvalRow
from lcpo.training.build import run
from lcpo.training.callbacks import validation_scalars


def _row(mode, budget, tokens, accuracy, over=0.0):
    return EvalRow(model="policy", task="synthetic", mode=mode, budget=budget, n=1, samples=1, k=1,
                   accuracy=accuracy, pass_at_k=accuracy, mean_tokens=tokens, length_std=0.0,
                   rel_error=(tokens - budget) / budget, over_budget_share=over, truncated_share=0.0)


def test_validation_scalars_per_budget_and_over_the_grid():
    rows = [_row("exact", 40, 44, 1.0), _row("exact", 80, 76, 0.5), _row("max", 40, 30, 1.0, 0.1),
            _row("max", 80, 30, 0.0, 0.0)]
    out = validation_scalars(rows)
    assert out["val/exact/b40/mean_tokens"] == 44 and out["val/exact/b80/accuracy"] == 0.5
    assert out["val/exact/abs_rel_error"] == pytest.approx((0.1 + 0.05) / 2)
    assert out["val/exact/pearson_r"] == pytest.approx(1.0) and out["val/exact/accuracy"] == 0.75
    assert out["val/max/over_budget_share"] == 0.1
    assert math.isnan(out["val/max/pearson_r"])  # flat lengths: undefined, not a made-up number


@pytest.mark.slow
def test_training_run_validates_on_its_grid_and_saves_the_plots(compose_train, tmp_path):
    cfg = compose_train("trainer.max_steps=2", "trainer.val_every_n_steps=1", "budget.low=8", "budget.high=24",
                        "val.problems=3", "eval.max_mode_cap=24", output_dir=tmp_path)
    run(cfg)
    for step in (1, 2):
        folder = tmp_path / "val" / f"step_{step}"
        assert (folder / "report.json").is_file() and (folder / "length_vs_budget.png").stat().st_size > 1000
    rows = []
    for path in sorted((tmp_path / "csv").glob("version_*/metrics.csv")):
        with path.open() as f:
            rows += list(csv.DictReader(f))
    logged = [r for r in rows if r.get("val/exact/abs_rel_error")]
    assert len(logged) == 2
    # four budgets spread over the training range [8, 24], both modes
    assert {k for k in logged[0] if k.startswith("val/exact/b") and k.endswith("/mean_tokens")} == {
        f"val/exact/b{b}/mean_tokens" for b in (10, 14, 18, 22)
    }


@pytest.mark.slow
def test_a_resumed_run_does_not_redo_a_finished_validation(compose_train, tmp_path, monkeypatch):
    """Killed after step 2's validation but before its checkpoint: the resumed run redoes step 2 from step 1's
    checkpoint and loads the validation's cells instead of sampling them again."""
    import lcpo.eval.run

    overrides = ("trainer.max_steps=2", "trainer.val_every_n_steps=1", "trainer.ckpt_every_n_steps=1",
                 "budget.low=8", "budget.high=24", "val.problems=2", "val.modes=[exact]", "eval.max_mode_cap=24")
    run(compose_train(*overrides, output_dir=tmp_path))
    report = (tmp_path / "val" / "step_2" / "report.json").read_text()
    for name in ("step_2.ckpt", "last.ckpt"):  # step 2's checkpoints, as if killed before they were written
        (tmp_path / "checkpoints" / name).unlink()
    sampled = []
    real = lcpo.eval.run.evaluate_cell
    monkeypatch.setattr(lcpo.eval.run, "evaluate_cell", lambda *a: sampled.append(a[2].key) or real(*a))
    run(compose_train(*overrides, "ckpt_path=auto", output_dir=tmp_path))
    assert sampled == []
    assert (tmp_path / "val" / "step_2" / "report.json").read_text() == report
