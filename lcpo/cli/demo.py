"""``python -m lcpo.demo`` (``make demo``): the embedded default, end to end, on a CPU in minutes.

1. warm-start a tiny model on the synthetic task (traces of random verbosity that wrap up now and then once the
   countdown shows the steps left no longer fit: it solves problems and only loosely follows budgets);
2. train it with LCPO in the paper's two stages: exact budgets (``experiment=demo``: L1-Exact), and max prompts
   (``experiment=demo_max``: L1-Max), both from the warm-started model (the paper mixes exact and max prompts and
   starts L1-Max from L1-Exact; why the demo does not: docs/measurements.md);
3. evaluate, as the paper does, L1-Exact in exact mode and L1-Max in max mode, the model before LCPO ("base") in
   both, and the s1 budget-forcing baseline on the base model ("s1"), over a budget grid;
4. write ``outputs/demo/``: ``report.json`` (with the bars, the same bars scored on the base model, and as the
   reward's own best policy on the synthetic task scores them: :mod:`lcpo.eval.optimum`), ``report.md``, the
   plots, ``model/`` (L1-Max in transformers format; L1-Exact is ``train/exact/model``), ``base/`` (the
   warm-started model), ``train/exact`` and ``train/max`` (the two training runs), and print the results and bars.

Overrides go to both training stages (``trainer.max_steps=100``, ``seed=1``), ``warmstart.*`` and ``model.tiny.*``
ones to the warm-start, which builds the tiny model (``warmstart.steps=300``, ``model.tiny.seed=1``), and ``task.*``
and ``prompt.*`` ones to all three, which must agree on them.
``--out`` moves the output folder (it is replaced on each run); ``--base <folder>`` starts from a warm-started model
instead of warm-starting one (to try LCPO settings on one warm-start).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
import time
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from lcpo.eval.acceptance import demo_bars
from lcpo.eval.optimum import optimum_bars, over_budget_shares
from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config import TrainConfig, WarmstartRunConfig, compose_config, to_schema, validate
from lcpo.errors import cli_boundary
from lcpo.eval.plan import EvalTask
from lcpo.eval.report import write_report
from lcpo.eval.rows import EvalRow
from lcpo.eval.run import evaluate_models
from lcpo.eval.store import CellStore
from lcpo.tasks import build_grader, build_task
from lcpo.training.build import run as train
from lcpo.training.console import quiet_console
from lcpo.cli.warmstart import warmstart_from_config

console = Console()
#: LCPO stages in order, each ``(folder under train/, experiment)``; both start from the warm-started model (why
#: L1-Max does not start from L1-Exact: conf/experiment/demo_max.yaml).
STAGES = (("exact", "demo"), ("max", "demo_max"))
#: Override prefixes that go to the warm-start only, and those it shares with the training stages.
WARMSTART_ONLY, SHARED = ("warmstart.", "model.tiny."), ("task.", "prompt.")


#: The demo's models in its report: the warm-started model, and the two LCPO stages' models (the paper's L1-Exact,
#: evaluated in exact mode, and L1-Max, in max mode); s1 forces the base model's length.
BASE, L1_EXACT, L1_MAX = "base", "lcpo-exact", "lcpo-max"


def show(rows: Sequence[EvalRow], results: Sequence[dict], timings: dict[str, float], best: Sequence[dict] = (),
         base: Sequence[dict] = ()) -> None:
    """Prints the evaluation table, the bars (with what the base model and the reward's best policy score on each)
    and the wall times."""
    table = Table(title="lcpo demo: evaluation (synthetic task)")
    for col in ("model", "mode", "budget", "n", "accuracy", "mean_tokens", "rel_error", "over_budget_share"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r.model, r.mode, str(r.budget), str(r.n), f"{r.accuracy:.3f}", f"{r.mean_tokens:.1f}",
                      f"{r.rel_error:+.3f}", f"{r.over_budget_share:.3f}")
    console.print(table)
    checks = Table(title=f"bars: exact mode on {L1_EXACT}, max mode on {L1_MAX}; the same bars on the base model, "
                         "and on the reward's own best policy (python -m lcpo.bench optimum)")
    for col in ("bar", "value", "target", "result", "base", "best policy"):
        checks.add_column(col)
    by_name = [{b["bar"]: b for b in other} for other in (base, best)]
    for b in results:
        verdict = "[green]pass[/green]" if b["ok"] else "[red]FAIL[/red]"
        value = f"{b['value']:+.3f}" + (f" ({b['where']})" if b.get("where") else "")
        others = [named.get(b["bar"]) for named in by_name]
        checks.add_row(b["bar"], value, b["target"], verdict,
                       *("" if o is None else f"{o['value']:+.3f} ({'pass' if o['ok'] else 'FAIL'})" for o in others))
    console.print(checks)
    console.print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))


def evaluate(base: Path, exact_model: Path, max_model: Path, cfg: TrainConfig, out: Path, s1: bool = True,
             best_over: dict[int, float] | None = None) -> tuple[list[EvalRow], list[dict], list[dict]]:
    """Evaluates the base model in both modes, L1-Exact in exact mode and L1-Max in max mode (and s1 on the base) on
    ``cfg.eval``, with cells under ``out/cells`` and samples in ``out/samples.jsonl``; returns the rows, the bars
    and the same bars scored on the base model."""
    task = EvalTask(build_task(cfg.task), build_grader(cfg.task))
    sampling = cfg.rollout.with_protocol_sampling()
    rows: list[EvalRow] = []
    one_mode = {mode: replace(cfg.eval, modes=[mode.value]) for mode in (Mode.EXACT, Mode.MAX)}
    for models, grid in (({BASE: base}, cfg.eval), ({L1_EXACT: exact_model}, one_mode[Mode.EXACT]),
                         ({L1_MAX: max_model}, one_mode[Mode.MAX])):
        rows += evaluate_models(models, [task], grid, rollout=sampling, prompt=cfg.prompt, output_dir=out)
    if s1:
        forcing = cfg.rollout.with_protocol_sampling("budget_forcing")
        rows += evaluate_models({BASE: base}, [task], cfg.eval, rollout=forcing, prompt=cfg.prompt, output_dir=out)
    CellStore(out).write_samples(rows, out / "samples.jsonl")
    length_grid = getattr(task.task, "length_grid", None)
    grid_ = length_grid(BudgetSpec(Mode.EXACT, max(cfg.eval.budgets))) if length_grid else None
    bars = demo_bars(rows, grid_, exact_model=L1_EXACT, max_model=L1_MAX, best_over=best_over)
    return rows, bars, demo_bars(rows, grid_, exact_model=BASE, max_model=BASE, best_over=best_over)


def check_base(base: Path, out: Path) -> None:
    """Refuses a ``--base`` that is not a model folder, or that lies inside ``out`` (which the demo replaces)."""
    if not (base / "config.json").is_file():
        raise ValueError(f"--base {base}: not a model folder (no config.json); give a warm-started model's folder")
    if base.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"--base {base}: lies inside --out {out}, which the demo replaces; copy it elsewhere first")


#: What a demo output folder holds; ``--out`` replaces only a folder that is empty or holds one of these.
DEMO_ENTRIES = ("report.json", "warmstart", "base", "train", "cells")


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
        checked = validate(compose_config("train", [f"experiment={experiment}", "model=tiny", stage_dir,
                                                    *train_overrides]))
    logger = checked.logger
    quiet_console(checked.trainer.verbose, logger.wandb and logger.wandb_mode == "online")
    if args.base:
        check_base(args.base, out)
    replace_folder(out)

    start = time.perf_counter()
    base = out / "base"
    if args.base:
        shutil.copytree(args.base, base)
    else:
        shutil.move(str(warmstart_from_config(ws_cfg)), base)
        timings["warm-start"] = time.perf_counter() - start

    models = {}
    for stage, experiment in STAGES:
        start = time.perf_counter()
        run_dir = out / "train" / stage
        cfg: TrainConfig = validate(
            compose_config("train", [f"experiment={experiment}", "model=hf", f"model.path={base}",
                                     f"output_dir={run_dir}", *train_overrides])
        )
        train(cfg)
        models[stage] = run_dir / "model"
        timings[f"lcpo {stage} stage"] = time.perf_counter() - start
    shutil.copytree(models["max"], out / "model")

    start = time.perf_counter()
    # the last stage's reward scores each mode as its own stage did (stage 2 keeps stage 1's exact alpha)
    best_rows, best = optimum_bars(cfg) if cfg.task.name == "synthetic" else ([], [])
    best_over = over_budget_shares(best_rows) if best_rows else None
    rows, results, base_bars = evaluate(base, models["exact"], models["max"], cfg, out, not args.no_s1,
                                        best_over)
    timings["evaluation"] = time.perf_counter() - start
    extra = {"bars": results, "base_bars": base_bars, "best_policy_bars": best, "wall_seconds": timings}
    write_report(rows, out, extra=extra)
    show(rows, results, timings, best, base_bars)
    console.print(f"outputs in {out}/: report.json, report.md, plots (*.png), model/ ({L1_MAX}, transformers "
                  f"format), train/exact/model ({L1_EXACT})")
    return {"rows": rows, **extra}


if __name__ == "__main__":
    main()
