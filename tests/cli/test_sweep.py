"""A real multirun: two values of alpha through `python -m lcpo.train -m +sweep=alpha`, then `lcpo.cli.report`."""

import csv
import subprocess
import sys

import pytest

from conftest import FAST_TRAIN
from lcpo.cli import report


@pytest.mark.slow
def test_alpha_sweep_then_report(tmp_path):
    sweep_dir = tmp_path / "multirun"
    cmd = [
        sys.executable, "-m", "lcpo.cli.train", "-m", "+sweep=alpha", "reward.alpha=1e-4,1e-3", *FAST_TRAIN,
        "trainer.max_steps=2", "budget.low=8", "budget.high=24", "eval.budgets=[8,16]", "eval.problems=4",
        "eval.samples=2", "trainer.progress_bar=false", f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "eval" / "report.json").is_file() and (job / "model" / "config.json").is_file()
        assert (job / "finished.json").is_file()

    # run again into the same folder: both jobs have finished, so nothing is trained or evaluated again
    written = {p: p.stat().st_mtime_ns for job in jobs for p in (job / "finished.json", job / "eval" / "report.json")}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert not list(sweep_dir.glob("*/csv/version_1"))  # no second start of either run
    # another value for job 1 into the same folder: refused, naming the key
    other = [c if not c.startswith("reward.alpha=") else "reward.alpha=1e-4,1e-2" for c in cmd]
    refused = subprocess.run(other, capture_output=True, text=True, timeout=900)
    assert refused.returncode != 0 and "reward.alpha" in refused.stderr and "finished run" in refused.stderr

    report.main([str(sweep_dir), "--out", str(tmp_path / "summary")])
    with (tmp_path / "summary" / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # jobs x budgets x modes
    assert {float(r["reward.alpha"]) for r in rows} == {1e-4, 1e-3}
    assert "reward.alpha" in (tmp_path / "summary" / "summary.md").read_text()
    assert (tmp_path / "summary" / "pareto.png").stat().st_size > 1000


def test_a_finished_job_is_skipped_whatever_the_console_showed(compose_train, tmp_path):
    from omegaconf import OmegaConf

    from lcpo.cli.train import finished_metrics
    from lcpo.training.build import FINISHED

    done = compose_train("model=tiny", "trainer.verbose=true", output_dir=tmp_path)
    OmegaConf.save(OmegaConf.structured(done), tmp_path / "config.yaml")
    (tmp_path / FINISHED).write_text('{"reward/mean": 0.25}')
    assert finished_metrics(compose_train("model=tiny", output_dir=tmp_path)) == {"reward/mean": 0.25}
    with pytest.raises(ValueError, match="seed"):
        finished_metrics(compose_train("model=tiny", "seed=7", output_dir=tmp_path))
