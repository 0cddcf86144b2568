"""What the interrupted-run tests compare: the run they interrupt, and the per-step metrics each start of a run
wrote."""

import csv
from pathlib import Path

import torch

#: Length-only LCPO on the tiny model: a random model never answers correctly, so the signal is the length term.
RUN = [
    "reward=exact", "reward.alpha=0.01", "budget=fixed", "budget.value=4", "rollout.temperature=1.0",
    "algo.lr=0.006", "algo.kl_coef=0.01", "algo.entropy_coef=0", "task.grading_workers=0",
    "trainer.ckpt_every_n_steps=1", "trainer.samples_every_n_steps=1", "trainer.max_steps=4",
]


def versions(out: Path) -> list[list[dict[str, str]]]:
    """The per-step rows of each start of a run (one CSV version folder each), in order."""
    found = []
    for path in sorted((out / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])):
        with path.open() as handle:
            found.append([r for r in csv.DictReader(handle) if r.get("rollout/mean_length")])
    return found


def deterministic(row: dict[str, str]) -> dict[str, float]:
    """A metrics row without its timings."""
    return {k: float(v) for k, v in row.items() if v and not k.startswith("perf/")}


def assert_same_training_state(a: Path, b: Path, optimizer_steps: int) -> None:
    """Two checkpoints at ``optimizer_steps`` hold the same weights and Adam state."""
    first, second = (torch.load(path, weights_only=False) for path in (a, b))
    assert first["global_step"] == second["global_step"] == optimizer_steps
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for key in first["state_dict"]:
        torch.testing.assert_close(first["state_dict"][key], second["state_dict"][key], atol=1e-4, rtol=0)
    for key, value in first["optimizer_states"][0]["state"][0].items():
        torch.testing.assert_close(value, second["optimizer_states"][0]["state"][0][key], atol=1e-4, rtol=0)
