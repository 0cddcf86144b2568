"""A run whose first rollouts never write ``</think>`` under ``task.require_think`` says so loudly, naming the
setting; the share of such responses is logged every step."""

import csv
import logging

from lcpo.training.build import run


def _no_think_shares(out) -> list[float]:
    (path,) = (out / "csv").glob("version_*/metrics.csv")
    with path.open() as handle:
        return [float(r["rollout/no_think_share"]) for r in csv.DictReader(handle) if r.get("rollout/no_think_share")]


def test_a_run_that_never_closes_its_thinking_is_warned_about_naming_the_setting(compose_train, tmp_path, caplog):
    # greedy, the random tiny model never writes </think>
    cfg = compose_train("rollout.temperature=0", "trainer.max_steps=3", output_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="lcpo.training.think_watch"):
        run(cfg)
    assert _no_think_shares(tmp_path) == [1.0] * 3
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "lcpo.training.think_watch"]
    assert "first 3 rollout steps" in warning and "task.require_think=true" in warning


def test_without_require_think_nothing_is_measured_or_said(compose_train, tmp_path, caplog):
    cfg = compose_train("rollout.max_new_tokens=2", "trainer.max_steps=3", "task.require_think=false",
                        output_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="lcpo.training.think_watch"):
        run(cfg)
    assert _no_think_shares(tmp_path) == []
    assert not [r for r in caplog.records if r.name == "lcpo.training.think_watch"]
