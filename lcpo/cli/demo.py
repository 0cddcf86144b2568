"""``python -m lcpo.demo`` (``make demo``): the embedded default, end to end, on a CPU in minutes.

1. warm-start a tiny model on the synthetic task (traces of random verbosity: it solves problems, ignores budgets);
2. train it with LCPO in the paper's two stages: exact budgets (``experiment=demo``, like L1-Exact), then more steps
   on a 50/50 exact/max mixture from that model (``experiment=demo_max``, like L1-Max);
3. evaluate the model before ("base") and after ("lcpo") over a budget grid in both modes, plus the s1
   budget-forcing baseline on the base model ("s1");
4. write ``outputs/demo/``: ``report.json`` (with the bars, and the same bars as the reward's own best policy on
   the synthetic task scores them: :mod:`lcpo.eval.optimum`), ``report.md``, the plots, ``model/`` (the LCPO
   policy in transformers format), ``base/`` (the warm-started model), ``train/exact`` and ``train/max`` (the two
   training runs), and print the results and bars.

Overrides go to both training stages (``trainer.max_steps=100``, ``seed=1``), ``warmstart.*`` and ``model.tiny.*``
ones to the warm-start, which builds the tiny model (``warmstart.steps=300``, ``model.tiny.seed=1``), and ``task.*``
and ``prompt.*`` ones to all three, which must agree on them.
``--out`` moves the output folder (it is replaced on each run); ``--base <folder>`` starts from a warm-started model
instead of warm-starting one (to try LCPO settings on one warm-start).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from lcpo.eval.acceptance import demo_bars
from lcpo.eval.optimum import optimum_bars
from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config import TrainConfig, WarmstartRunConfig, compose_config, to_schema, validate
from lcpo.errors import cli_boundary
from lcpo.eval.run import EvalTask, evaluate_models, write_report
from lcpo.tasks import build_grader, build_task
from lcpo.cli.train import run as train
from lcpo.cli.warmstart import warmstart_from_config

console = Console()
#: LCPO stages in order, each ``(folder under train/, experiment)``; a stage starts from the previous one's model.
STAGES = (("exact", "demo"), ("max", "demo_max"))
#: Override prefixes that go to the warm-start only, and those it shares with the training stages.
WARMSTART_ONLY, SHARED = ("warmstart.", "model.tiny."), ("task.", "prompt.")


def show(rows: Sequence[dict], results: Sequence[dict], timings: dict[str, float],
         best: Sequence[dict] = ()) -> None:
    """Prints the evaluation table, the bars (with what the reward's best policy scores on each, where known) and
    the wall times."""
    table = Table(title="lcpo demo: evaluation (synthetic task)")
    for col in ("model", "mode", "budget", "n", "accuracy", "mean_tokens", "rel_error", "over_budget_share"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["model"], r["mode"], str(r["budget"]), str(r["n"]), f"{r['accuracy']:.3f}",
                      f"{r['mean_tokens']:.1f}", f"{r['rel_error']:+.3f}", f"{r['over_budget_share']:.3f}")
    console.print(table)
    checks = Table(title="bars (best policy: the reward's own optimum on this task, python -m lcpo.bench optimum)")
    for col in ("bar", "value", "target", "result", "best policy"):
        checks.add_column(col)
    ceiling = {b["bar"]: b for b in best}
    for b in results:
        verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: ""}[b["ok"]]
        other = ceiling.get(b["bar"])
        checks.add_row(b["bar"], f"{b['value']:+.3f}", b["target"], verdict,
                       "" if other is None else f"{other['value']:+.3f} ({'pass' if other['ok'] else 'FAIL'})")
    console.print(checks)
    console.print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))


def evaluate(base: Path, model: Path, cfg: TrainConfig, out: Path, s1: bool = True) -> tuple[list[dict], list[dict]]:
    """Evaluates the base and LCPO models (and s1 on the base) on ``cfg.eval``, with samples in
    ``out/samples.jsonl``; returns the rows and the bars."""
    task = EvalTask(build_task(cfg.task), build_grader(cfg.task))
    samples = out / "samples.jsonl"
    rows = evaluate_models(
        {"base": base, "lcpo": model}, [task], cfg.eval, rollout=cfg.rollout.with_protocol_sampling(),
        prompt=cfg.prompt, samples_path=samples,
    )
    if s1:
        forcing = cfg.rollout.with_protocol_sampling("budget_forcing")
        rows += evaluate_models({"base": base}, [task], cfg.eval, rollout=forcing, prompt=cfg.prompt, samples_path=samples)
    grid = getattr(task.task, "length_grid", None)
    return rows, demo_bars(rows, grid(BudgetSpec(Mode.EXACT, max(cfg.eval.budgets))) if grid else None)


def check_base(base: Path, out: Path) -> None:
    """Refuses a ``--base`` that is not a model folder, or that lies inside ``out`` (which the demo replaces)."""
    if not (base / "config.json").is_file():
        raise ValueError(f"--base {base}: not a model folder (no config.json); give a warm-started model's folder")
    if base.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"--base {base}: lies inside --out {out}, which the demo replaces; copy it elsewhere first")


#: What a demo output folder holds; ``--out`` replaces only a folder that is empty or holds one of these.
DEMO_ENTRIES = ("report.json", "warmstart", "base", "train")


def replace_folder(out: Path) -> None:
    """Empties ``out`` for a new demo run, refusing a folder with other content (a mistyped ``--out``)."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not any((out / e).exists() for e in DEMO_ENTRIES)):
            raise ValueError(
                f"--out {out}: exists and is not a demo output folder (none of {', '.join(DEMO_ENTRIES)}); "
                "the demo replaces its output folder, so give it a new or empty one"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)


@cli_boundary("lcpo-demo")
def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="lcpo-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--no-s1", action="store_true", help="skip the s1 budget-forcing baseline")
    parser.add_argument("--base", type=Path, help="start from this warm-started model folder instead of warm-starting")
    args, overrides = parser.parse_known_args(argv)
    out: Path = args.out
    ws_overrides = [o for o in overrides if o.startswith((*WARMSTART_ONLY, *SHARED))]
    train_overrides = [o for o in overrides if not o.startswith(WARMSTART_ONLY)]
    timings: dict[str, float] = {}
    ws_cfg = to_schema(compose_config("warmstart", [*ws_overrides, f"output_dir={out / 'warmstart'}"]),
                       WarmstartRunConfig)
    for stage, experiment in STAGES:  # a bad override fails now, not after the warm-start
        stage_dir = f"output_dir={out / 'train' / stage}"
        validate(compose_config("train", [f"experiment={experiment}", "model=tiny", stage_dir, *train_overrides]))
    if args.base:
        check_base(args.base, out)
    replace_folder(out)

    start = time.perf_counter()
    policy = out / "base"
    if args.base:
        shutil.copytree(args.base, policy)
    else:
        shutil.move(str(warmstart_from_config(ws_cfg)), policy)
        timings["warm-start"] = time.perf_counter() - start

    for stage, experiment in STAGES:
        start = time.perf_counter()
        run_dir = out / "train" / stage
        cfg: TrainConfig = validate(
            compose_config("train", [f"experiment={experiment}", "model=hf", f"model.path={policy}",
                                     f"output_dir={run_dir}", *train_overrides])
        )
        train(cfg)
        policy = run_dir / "model"
        timings[f"lcpo {stage} stage"] = time.perf_counter() - start
    shutil.copytree(policy, out / "model")

    start = time.perf_counter()
    rows, results = evaluate(out / "base", out / "model", cfg, out, s1=not args.no_s1)
    timings["evaluation"] = time.perf_counter() - start
    best = optimum_bars(cfg)[1] if cfg.task.name == "synthetic" else []
    extra = {"bars": results, "best_policy_bars": best, "wall_seconds": timings}
    write_report(rows, out, extra=extra)
    show(rows, results, timings, best)
    console.print(f"outputs in {out}/: report.json, report.md, plots (*.png), model/ (transformers format)")
    return {"rows": rows, **extra}


if __name__ == "__main__":
    main()
