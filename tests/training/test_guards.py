"""Guards: a NaN never reaches the weights, NaNs in a row stop the run naming the step, and rollouts without a
learning signal are measured and warned about."""

import csv
import logging
import re

import pytest
import torch

from lcpo.training.collector import RolloutCollector
from lcpo.training.guards import NonFiniteUpdates
from lcpo.cli.train import main
from lcpo.training.build import run

RUN = [
    "reward=exact", "reward.alpha=0.01", "budget=fixed", "budget.value=4", "rollout.temperature=1.0",
    "algo.lr=0.006", "algo.kl_coef=0.01", "algo.entropy_coef=0", "trainer.ckpt_every_n_steps=1",
]
UPDATES = 2  # optimiser steps per rollout step in FAST_TRAIN (prompts_per_step / mini_batch_prompts)


@pytest.fixture
def nan_at(monkeypatch):
    """Makes the advantages of the given rollout steps (0-based) NaN, as a broken reward or a bad row would."""

    def poison(steps):
        real = RolloutCollector.collect

        def collect(self, batch, rank=0):
            rb = real(self, batch, rank)
            if steps == "all" or batch.step in steps:
                rb.advantages = torch.full_like(rb.advantages, float("nan"))
            return rb

        monkeypatch.setattr(RolloutCollector, "collect", collect)

    return poison


def _rows(out):
    (path,) = (out / "csv").glob("version_*/metrics.csv")
    with path.open() as handle:
        return [r for r in csv.DictReader(handle) if r.get("rollout/mean_length")]


def _checkpoint(out, step):
    return torch.load(out / "checkpoints" / f"step_{step}.ckpt", weights_only=False)


def test_a_nan_step_leaves_weights_and_optimiser_state_unchanged(compose_train, tmp_path, nan_at):
    nan_at({1})
    run(compose_train(*RUN, "trainer.max_steps=3", output_dir=tmp_path))
    before, poisoned, after = (_checkpoint(tmp_path, s) for s in (1, 2, 3))
    for key, value in before["state_dict"].items():
        assert torch.equal(value, poisoned["state_dict"][key]), key
    assert any(not torch.equal(v, after["state_dict"][k]) for k, v in poisoned["state_dict"].items())
    opt_before, opt_poisoned = before["optimizer_states"][0]["state"], poisoned["optimizer_states"][0]["state"]
    for index, state in opt_before.items():
        for key, value in state.items():
            assert torch.equal(value, opt_poisoned[index][key]), (index, key)
    assert poisoned["lr_schedulers"][0]["last_epoch"] == before["lr_schedulers"][0]["last_epoch"]
    # Lightning still counts the skipped optimiser steps, so the prompt stream stays on its step
    assert poisoned["global_step"] == 2 * UPDATES
    assert [float(r["train/skipped_steps"]) for r in _rows(tmp_path)] == [0, UPDATES, 0]


def test_nans_in_a_row_stop_the_run_naming_the_step(compose_train, tmp_path, nan_at):
    nan_at("all")
    cfg = compose_train(*RUN, "trainer.max_steps=5", "algo.max_skipped_steps=3", output_dir=tmp_path)
    with pytest.raises(NonFiniteUpdates, match=re.escape("stopping at optimiser step 3 (rollout step 2): 3 optimiser "
                                                         "steps in a row had a non-finite loss or gradient")):
        run(cfg)


def test_the_entry_point_reports_the_stop_in_one_line(tmp_path, nan_at, hydra_main):
    from conftest import FAST_TRAIN

    nan_at("all")
    code, err = hydra_main(main, *FAST_TRAIN, *RUN, "algo.max_skipped_steps=1", f"output_dir={tmp_path}",
                           f"hydra.run.dir={tmp_path}")
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("lcpo-train: error: stopping at optimiser step 1 (rollout step 1)")


def test_rollouts_without_signal_are_measured_and_warned_about_once(compose_train, tmp_path, caplog):
    # a random model never answers correctly, so correctness alone gives every sample of a group the same reward;
    # a one-token cap cuts every response
    cfg = compose_train("reward=correctness", "rollout.max_new_tokens=1", "trainer.max_steps=4",
                        "trainer.warn_zero_signal=0.5", "trainer.warn_zero_signal_steps=2", output_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="lcpo.training.guards"):
        run(cfg)
    rows = _rows(tmp_path)
    assert [float(r["rollout/zero_signal_share"]) for r in rows] == [1.0] * 4
    truncated = [float(r["rollout/truncated_share"]) for r in rows]
    assert min(truncated) > 0.9 and truncated[0] == 1.0  # a response whose first token is EOS is not cut
    warnings = [r.getMessage() for r in caplog.records if r.name == "lcpo.training.guards"]
    assert len(warnings) == 2, warnings
    assert "every response of rollout step 1 hit rollout.max_new_tokens=1" in warnings[0]
    assert "for 2 rollout steps up to step 2, more than 50% of the groups" in warnings[1]


def test_a_run_with_signal_is_not_warned_about(compose_train, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lcpo.training.guards"):
        run(compose_train(*RUN, "trainer.max_steps=2", "trainer.warn_zero_signal_steps=1", output_dir=tmp_path))
    assert all(float(r["rollout/zero_signal_share"]) < 0.5 for r in _rows(tmp_path))
    assert not [r for r in caplog.records if r.name == "lcpo.training.guards"]
