"""End-to-end training: a learning signal, exact resume, the HF export, and DDP over two CPU processes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from lcpo.models.meta import read_meta
from lcpo.models.tiny import load_tokenizer
from lcpo.training.build import build, run

# Length-only signal: a random model never answers correctly, so LCPO-Exact reduces to -alpha * |N - n|.
LENGTH_ONLY = [
    "reward=exact",
    "reward.alpha=0.01",
    "budget=fixed",
    "budget.value=4",
    "rollout.temperature=1.0",
    "algo.lr=0.006",
    "algo.kl_coef=0",
    "algo.entropy_coef=0",
]


def _metrics(out: Path) -> list[dict]:
    """Per-step rows of every start of the run, one per step: a resumed run writes a new version folder that starts
    with the row of the step it resumed from again, and a later start's row of a step replaces an earlier one's."""
    rows: dict[str, dict] = {}
    for path in sorted((out / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])):
        with path.open() as f:
            rows |= {row["step"]: row for row in csv.DictReader(f) if row.get("rollout/mean_length")}
    return sorted(rows.values(), key=lambda row: int(row["step"]))


@pytest.mark.slow
def test_length_moves_toward_target(compose_train, tmp_path):
    cfg = compose_train(*LENGTH_ONLY, "trainer.max_steps=12", output_dir=tmp_path)
    run(cfg)
    lengths = [float(r["rollout/mean_length"]) for r in _metrics(tmp_path)]
    assert len(lengths) == 12
    first, last = sum(lengths[:3]) / 3, sum(lengths[-3:]) / 3
    # the budget is 4 tokens and the cap 32: the mean length must fall well towards it
    assert last < first - 8, lengths


def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.policy.state_dict().items()}


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(compose_train, tmp_path):
    common = [*LENGTH_ONLY, "algo.kl_coef=0.01", "trainer.ckpt_every_n_steps=2"]
    full = compose_train(*common, "trainer.max_steps=4", output_dir=tmp_path / "full")
    module_full, dm, trainer = build(full)
    trainer.fit(module_full, datamodule=dm)

    first = compose_train(*common, "trainer.max_steps=2", output_dir=tmp_path / "part")
    run(first)
    ckpt = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed = compose_train(*common, "trainer.max_steps=4", f"ckpt_path={ckpt}", output_dir=tmp_path / "part")
    module_resumed, dm2, trainer2 = build(resumed)
    trainer2.fit(module_resumed, datamodule=dm2, ckpt_path=resumed.ckpt_path)

    assert trainer2.global_step == trainer.global_step == 4 * full.algo.updates_per_step
    a, b = _weights(module_full), _weights(module_resumed)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    full_rows, part_rows = _metrics(tmp_path / "full"), _metrics(tmp_path / "part")
    assert [r["rollout/mean_length"] for r in full_rows] == [r["rollout/mean_length"] for r in part_rows]


def test_export_reloads_offline_and_generates(compose_train, tmp_path):
    cfg = compose_train(*LENGTH_ONLY, "trainer.max_steps=1", output_dir=tmp_path)
    run(cfg)
    folder = tmp_path / "model"
    meta = read_meta(folder)  # what evaluation needs to meet the model as trained
    assert meta.prompt == cfg.prompt and meta.grid == cfg.eval
    budgets = cfg.budget.distribution()
    assert meta.budget_range == (budgets.smallest, budgets.largest)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = load_tokenizer(folder)
    text = "12 + 3 = ?\nThink for 40 tokens."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # spaces and newlines survive the export
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids.shape[1]


def _distributed_run(tmp_path: Path, *overrides: str, fake_vllm: bool = False) -> list[dict]:
    """Trains two steps in two gloo processes (tests/distributed_run.py); returns each rank's dump.

    Micro-batches of at most 120 tokens split the ranks' rows into different numbers of micro-batches (3 and 4 at
    these seeds): unless the ranks agree on one count, their collectives fall out of step and the run hangs."""
    from conftest import FAKES, FAST_TRAIN

    tests = Path(__file__).resolve().parents[1]
    paths = [str(FAKES)] if fake_vllm else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([*paths, str(tests.parent), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(tests / "distributed_run.py"), *FAST_TRAIN, *LENGTH_ONLY, "trainer.max_steps=2",
           "trainer.num_threads=1", "algo.micro_batch_tokens=120", *overrides, f"output_dir={tmp_path}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_metrics(tmp_path)) == 2  # one set of metrics per step, written once (rank 0), not once per process
    assert (tmp_path / "model" / "config.json").is_file()
    return [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]


def _assert_same_weights_and_trained(ranks: list[dict], initial: dict[str, torch.Tensor]) -> None:
    """Both ranks hold the same weights (gradients were reduced over ranks: each rank saw different prompts), and
    they moved away from the initial ones."""
    first, second = ranks[0]["weights"], ranks[1]["weights"]
    assert first.keys() == second.keys() and ranks[0]["world_size"] == 2
    for key in first:
        torch.testing.assert_close(first[key], second[key], atol=0, rtol=0, msg=key)
    assert any(not torch.allclose(first[k], initial[k]) for k in first)


def _initial_weights(compose_train, tmp_path: Path) -> dict[str, torch.Tensor]:
    return _weights(build(compose_train(*LENGTH_ONLY, output_dir=tmp_path / "init"))[0])


@pytest.mark.slow
def test_ddp_two_cpu_processes(compose_train, tmp_path):
    ranks = _distributed_run(tmp_path, "trainer=ddp_cpu")
    _assert_same_weights_and_trained(ranks, _initial_weights(compose_train, tmp_path))
    for dump in ranks:  # 3-4 micro-batches a step, gradients all-reduced once a step (no_sync on the others)
        buckets, steps = dump["allreduced_buckets"], dump["optimizer_steps"]
        assert steps > 0 and len(buckets) == len(set(buckets)) * steps


@pytest.mark.slow
def test_fsdp_two_cpu_processes(compose_train, tmp_path):
    """FSDP2 over two gloo processes: the sharded policy trains like one model, exports whole and reloads."""
    ranks = _distributed_run(tmp_path, "trainer=fsdp_cpu", "algo.kl_coef=0.01")
    _assert_same_weights_and_trained(ranks, _initial_weights(compose_train, tmp_path))
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "model", local_files_only=True)
    for key, value in exported.state_dict().items():
        torch.testing.assert_close(value, ranks[0]["weights"][key], msg=key)


@pytest.mark.slow
def test_vllm_ddp_two_cpu_processes(tmp_path):
    """Each rank builds its own engine once the process group exists, on its own rank, and samples its own
    prompts with its own seeds; with tensor_parallel_size=2 both ranks would submit the same requests."""
    ranks = _distributed_run(tmp_path, "trainer=ddp_cpu", "rollout=vllm", fake_vllm=True)
    for rank, dump in enumerate(ranks):
        (engine,) = dump["vllm_engines"]
        assert engine["distributed"] and engine["world_size"] == 2 and engine["env"]["RANK"] == str(rank)
    seeds = [[d["seeds"] for _, e, d in dump["vllm_calls"] if e == "generate" and d["seeds"] != [None]]
             for dump in ranks]  # the unseeded one is the first push's log-prob check
    assert len(seeds[0]) == 2 and not set(seeds[0][0]) & set(seeds[1][0])
    for key in ranks[0]["weights"]:
        torch.testing.assert_close(ranks[0]["weights"][key], ranks[1]["weights"][key], atol=0, rtol=0)


@pytest.mark.slow
@pytest.mark.vllm
def test_real_vllm_ddp_two_cpu_processes(tmp_path):
    """vLLM's CPU build in two gloo processes: each rank's engine joins the trainer's group through
    ``external_launcher``, samples from the pushed weights (the first push's check compares log-probs) and is
    shut down at the end without taking the group with it."""
    from conftest import REAL_VLLM_TRAIN, require_real_vllm

    require_real_vllm()
    ranks = _distributed_run(tmp_path, "trainer=ddp_cpu", *REAL_VLLM_TRAIN)
    for key in ranks[0]["weights"]:
        torch.testing.assert_close(ranks[0]["weights"][key], ranks[1]["weights"][key], atol=0, rtol=0)


def test_mixed_modes_log_every_metric(compose_train, tmp_path):
    cfg = compose_train("reward=mixed", "budget=l1_max", "budget.low=4", "budget.high=20", "budget.max_share=0.4",
                        "budget.none_share=0.2", "trainer.max_steps=2", "trainer.samples_every_n_steps=1",
                        "algo.prompts_per_step=8", "algo.mini_batch_prompts=4", output_dir=tmp_path)
    run(cfg)
    rows = _metrics(tmp_path)
    keys = ["reward/mean", "reward/std", "rollout/accuracy", "rollout/abs_rel_error", "rollout/rel_error",
            "exact/accuracy", "max/over_budget_share", "none/mean_length", "train/kl", "train/clip_fraction",
            "train/entropy", "train/grad_norm", "perf/rollout_tokens_per_s", "perf/train_tokens_per_s",
            "perf/step_seconds", "rollout/zero_signal_share", "rollout/truncated_share", "train/skipped_steps"]
    assert len(rows) == 2 and all(rows[-1].get(k) not in (None, "") for k in keys), rows[-1]
    samples = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 2 * 8 and '"budget"' in samples[0] and '"text"' in samples[0]


@pytest.mark.slow
def test_each_run_in_one_process_gets_its_own_wandb_run(compose_train, tmp_path, capfd):
    """Sweep jobs and the demo's stages run in one process: the second must not log into the first's wandb run.
    Offline wandb stays quiet: no banner, no warning about settings lcpo never asked for."""
    pytest.importorskip("wandb")
    for name in ("first", "second"):
        run(compose_train("trainer.max_steps=1", "logger=default", output_dir=tmp_path / name))
    for name in ("first", "second"):
        assert len(list((tmp_path / name / "wandb").glob("offline-run-*"))) == 1, name
    console = "".join(capfd.readouterr())
    assert "wandb:" not in console, console


def test_one_step_count_everywhere(compose_train, tmp_path):
    """Rollout steps in the CSV (training and validation rows), folder names, checkpoint names and samples, although
    each rollout step takes several optimiser steps."""
    cfg = compose_train("trainer.max_steps=3", "trainer.val_every_n_steps=2", "trainer.ckpt_every_n_steps=2",
                        "trainer.samples_every_n_steps=2", "val.problems=2", "val.modes=[exact]",
                        "task.grading_workers=0", output_dir=tmp_path)
    assert cfg.algo.updates_per_step > 1
    run(cfg)
    (path,) = (tmp_path / "csv").glob("version_*/metrics.csv")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["step"]) for r in rows if r.get("rollout/mean_length")) == [1, 2, 3]
    assert [int(r["step"]) for r in rows if r.get("val/exact/accuracy")] == [2]
    assert [p.name for p in (tmp_path / "val").iterdir()] == ["step_2"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.ckpt")) == ["step_2.ckpt"]
    samples = {json.loads(line)["step"] for line in (tmp_path / "samples.jsonl").read_text().splitlines()}
    assert samples <= {1, 2, 3} and samples
