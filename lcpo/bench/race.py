"""``python -m lcpo.bench race`` (``make race``): lcpo's training step against TRL's GRPOTrainer, side by side.

Both train the same randomly initialised tiny Qwen2 (hidden 128, 4 layers, the character vocabulary of
``lcpo.models.tiny``), built here, on the same prompts (the demo's synthetic task with budgets, the exact strings lcpo's
prompt stream builds, in the same order), with the same reward (LCPO-Exact through lcpo's grader), 16 prompts x 8
samples per step, up to 128 new tokens at temperature 1.0, no KL, lr 1e-4, one optimiser step per rollout batch,
fp32, two threads (``--threads``). Runs alternate between the two (lcpo first in odd runs, TRL first in even ones)
so that a load that comes and goes on the machine hits both; each run's figure is its median step time over steps
3..12 (the first two warm up), and the summary is the median of those per side and their ratio, in ``race.json``.

lcpo runs as ``python -m lcpo.bench`` (its step time is ``perf/step_seconds``: generation, scoring and update);
TRL as ``python -m lcpo.bench.trl_grpo`` (the span from ``on_step_begin`` to ``on_step_end``: the same work).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from lcpo.config import TinyModelConfig, TrainConfig, compose_config, validate

#: The race's model: a Qwen2 of realistic layout at toy size.
MODEL = TinyModelConfig(arch="qwen2", hidden_size=128, num_layers=4, num_heads=4, intermediate_size=256, seed=0)
#: lcpo's settings for the race, on top of ``experiment=demo`` (whose task, prompts, budgets and reward both use).
OVERRIDES = (
    "algo.prompts_per_step=16", "algo.group_size=8", "algo.mini_batch_prompts=16", "algo.ppo_epochs=1",
    "algo.kl_coef=0", "algo.entropy_coef=0", "algo.lr=1e-4", "rollout.max_new_tokens=128", "rollout.temperature=1.0",
    "rollout.top_p=1.0", "rollout.top_k=0", "trainer.val_every_n_steps=0",
    "trainer.samples_every_n_steps=0", "trainer.progress_bar=false", "seed=0",
)


def build_model(folder: Path) -> Path:
    """The race's randomly initialised model and tokenizer, saved in transformers format."""
    from lcpo.models.tiny import build_tiny, save_tiny

    return save_tiny(*build_tiny(MODEL), folder)


def overrides(threads: int) -> list[str]:
    """lcpo's training overrides for the race, with ``threads`` torch threads."""
    return [*OVERRIDES, f"trainer.num_threads={threads}"]


def lcpo_config(model: Path, out: Path, threads: int = 2) -> TrainConfig:
    """The training config ``python -m lcpo.bench --base MODEL`` composes for the race (as TRL's source of truth)."""
    return validate(compose_config("train", [
        "experiment=demo", "model=hf", f"model.path={model}", "logger=csv", f"output_dir={out}", *overrides(threads),
    ]))


def write_trl_settings(cfg: TrainConfig, steps: int, folder: Path) -> Path:
    """The prompts lcpo's stream gives steps 0..steps-1 (rank 0), and TRL's settings taken from ``cfg``."""
    from lcpo.models.tiny import load_tokenizer
    from lcpo.training.build import build_datamodule

    stream = build_datamodule(cfg, load_tokenizer(cfg.model.path), start_step=lambda: 0).stream(rank=0)
    prompts = folder / "prompts.jsonl"
    with prompts.open("w") as f:
        for step in range(steps):
            batch = stream.batch(step)
            for problem, spec, prompt in zip(batch.problems, batch.specs, batch.prompts):
                f.write(json.dumps({"prompt": prompt, "answer": problem.answer, "mode": spec.mode,
                                    "budget": spec.budget}) + "\n")
    settings = {
        "model": str(cfg.model.path), "prompts": str(prompts), "steps": steps, "seed": cfg.seed,
        "threads": cfg.trainer.num_threads, "grading_workers": cfg.task.grading_workers,
        "prompts_per_step": cfg.algo.prompts_per_step, "group_size": cfg.algo.group_size,
        "max_new_tokens": cfg.rollout.max_new_tokens, "temperature": cfg.rollout.temperature,
        "clip_low": cfg.algo.clip_low, "clip_high": cfg.algo.clip_high, "lr": cfg.algo.lr,
        "weight_decay": cfg.algo.weight_decay, "betas": list(cfg.algo.betas), "grad_clip": cfg.algo.grad_clip,
        "reward": asdict(cfg.reward),
    }
    path = folder / "trl_settings.json"
    path.write_text(json.dumps(settings, indent=1) + "\n")
    return path


def _median_of(values: list[float], skip: int) -> float:
    return statistics.median(values[skip:] or values)


def run_lcpo(model: Path, steps: int, out: Path, skip: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "lcpo.bench", "--base", str(model), "--steps", str(steps), "--out", str(out),
           *overrides(threads)]
    _run(cmd, out)
    rows = []
    for path in sorted((out / "csv").glob("version_*/metrics.csv")):
        with path.open() as f:
            rows += [r for r in csv.DictReader(f) if r.get("perf/step_seconds")]
    seconds = [float(r["perf/step_seconds"]) for r in rows]
    return {"step_seconds": seconds, "median_step_seconds": _median_of(seconds, skip),
            "median_rollout_seconds": _median_of([float(r["perf/rollout_seconds"]) for r in rows], skip),
            "mean_length": statistics.mean(float(r["rollout/mean_length"]) for r in rows[skip:] or rows)}


def run_trl(settings: Path, out: Path, skip: int) -> dict:
    result_path = out / "trl.json"
    _run([sys.executable, "-m", "lcpo.bench.trl_grpo", str(settings), str(result_path)], out)
    result = json.loads(result_path.read_text())
    seconds, lengths = result["step_seconds"], result["mean_length"]
    return {"step_seconds": seconds, "median_step_seconds": _median_of(seconds, skip), "median_rollout_seconds": None,
            "mean_length": statistics.mean(lengths[skip:] or lengths)}


def _run(cmd: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "offline"}
    with (out / "log.txt").open("w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = (out / "log.txt").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}); {out / 'log.txt'} ends:\n{tail}")


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="lcpo-bench race", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per side, interleaved")
    parser.add_argument("--steps", type=int, default=12, help="rollout steps per run")
    parser.add_argument("--skip", type=int, default=2, help="warm-up steps left out of each run's median")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each side")
    parser.add_argument("--out", type=Path, default=Path("outputs/race"))
    args = parser.parse_args(argv)
    try:
        import trl  # noqa: F401
    except ImportError:
        raise SystemExit('the race needs TRL: pip install -c constraints.txt -e ".[bench]" (make race does it)')
    args.out.mkdir(parents=True, exist_ok=True)
    model = build_model(args.out / "model")
    settings = write_trl_settings(lcpo_config(model, args.out / "config", args.threads), args.steps, args.out)
    runs = []
    for i in range(args.runs):
        for side in ("lcpo", "trl") if i % 2 == 0 else ("trl", "lcpo"):
            out = args.out / f"{side}_{i + 1}"
            if side == "lcpo":
                result = run_lcpo(model, args.steps, out, args.skip, args.threads)
            else:
                result = run_trl(settings, out, args.skip)
            runs.append({"side": side, "run": i + 1, **result})
            Console().print(f"{side} run {i + 1}: median step {result['median_step_seconds']:.2f} s")
    medians = {side: statistics.median(r["median_step_seconds"] for r in runs if r["side"] == side)
               for side in ("lcpo", "trl")}
    summary = {"lcpo_median_step_seconds": medians["lcpo"], "trl_median_step_seconds": medians["trl"],
               "ratio": medians["lcpo"] / medians["trl"], "steps_in_median": f"{args.skip + 1}..{args.steps}",
               "threads": args.threads, "runs": runs}
    (args.out / "race.json").write_text(json.dumps(summary, indent=1) + "\n")
    show(runs, summary)
    return summary


def show(runs: list[dict], summary: dict) -> None:
    table = Table(title=f"lcpo vs TRL GRPOTrainer: median step time over steps {summary['steps_in_median']}")
    for col in ("run", "side", "median step (s)", "median rollout (s)", "mean length"):
        table.add_column(col, justify="right")
    for r in runs:
        rollout = "" if r["median_rollout_seconds"] is None else f"{r['median_rollout_seconds']:.2f}"
        table.add_row(str(r["run"]), r["side"], f"{r['median_step_seconds']:.2f}", rollout, f"{r['mean_length']:.1f}")
    Console().print(table)
    Console().print(f"median of runs: lcpo {summary['lcpo_median_step_seconds']:.2f} s, TRL "
                    f"{summary['trl_median_step_seconds']:.2f} s; ratio lcpo/TRL {summary['ratio']:.2f}")
