"""``python -m lcpo.demo`` (``make demo``): the embedded default, end to end, on a CPU in minutes.

1. warm-start a tiny model on the synthetic task (traces of random verbosity: it solves problems, ignores budgets);
2. train it with LCPO (``experiment=demo``);
3. evaluate the model before ("base") and after ("lcpo") over a budget grid in both modes, plus the s1
   budget-forcing baseline on the base model ("s1");
4. write ``outputs/demo/``: ``report.json``, ``report.md``, the plots, ``model/`` (the LCPO policy in transformers
   format), ``base/`` (the warm-started model), ``train/`` (the training run), and print the results and bars.

Overrides go to the training config (``trainer.max_steps=100``) except ``warmstart.*`` ones, which go to the
warm-start config (``warmstart.steps=300``). ``--out`` moves the output folder (it is replaced on each run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from lcpo.config import TrainConfig, validate
from lcpo.evaluate import EvalTask, evaluate_models, protocol_rollout, write_report
from lcpo.grading import Grader
from lcpo.metrics import pearson
from lcpo.tasks import build_task
from lcpo.train import run as train
from lcpo.warmstart import WarmstartRunConfig, warmstart_from_config

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
console = Console()


def _compose(name: str, overrides: Sequence[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def bars(rows: Sequence[dict]) -> list[dict]:
    """The demo's acceptance bars, computed from report rows: name, measured value, target, pass/fail."""

    def pick(model: str, mode: str) -> list[dict]:
        return sorted((r for r in rows if r["model"] == model and r["mode"] == mode), key=lambda r: r["budget"])

    exact, maxed, base_exact = pick("lcpo", "exact"), pick("lcpo", "max"), pick("base", "exact")
    budgets = [r["budget"] for r in exact]
    out = [
        {"bar": "lcpo exact: Pearson r(mean tokens, budget)", "value": pearson(budgets, [r["mean_tokens"] for r in exact]), "target": ">= 0.95", "ok": None},
        {"bar": "base exact: Pearson r(mean tokens, budget)", "value": pearson(budgets, [r["mean_tokens"] for r in base_exact]), "target": "(reference, near 0)", "ok": True},
        {"bar": "lcpo exact: mean |rel_error|", "value": sum(abs(r["rel_error"]) for r in exact) / len(exact), "target": "<= 0.15", "ok": None},
        {"bar": "lcpo max: worst over_budget_share", "value": max(r["over_budget_share"] for r in maxed), "target": "<= 0.10", "ok": None},
        {"bar": "exact, largest budget: lcpo - base accuracy", "value": exact[-1]["accuracy"] - base_exact[-1]["accuracy"], "target": ">= -0.05", "ok": None},
        {"bar": "lcpo exact: r(accuracy, budget)", "value": pearson(budgets, [r["accuracy"] for r in exact]), "target": "> 0 (rising)", "ok": None},
    ]
    checks = [lambda v: v >= 0.95, None, lambda v: v <= 0.15, lambda v: v <= 0.10, lambda v: v >= -0.05, lambda v: v > 0]
    s1 = sorted((r for r in rows if r["model"] == "s1"), key=lambda r: r["budget"])
    if s1:
        for budget in budgets[:2]:
            lcpo_acc = next(r["accuracy"] for r in exact if r["budget"] == budget)
            s1_acc = next((r["accuracy"] for r in s1 if r["budget"] == budget), float("nan"))
            out.append({"bar": f"budget {budget}: lcpo exact - s1 accuracy", "value": lcpo_acc - s1_acc, "target": ">= 0", "ok": None})
            checks.append(lambda v: v >= 0)
    for bar, check in zip(out, checks):
        if check is not None:
            bar["ok"] = bool(check(bar["value"]))
    return out


def show(rows: Sequence[dict], results: Sequence[dict], timings: dict[str, float]) -> None:
    table = Table(title="lcpo demo: evaluation (synthetic task)")
    for col in ("model", "mode", "budget", "n", "accuracy", "mean_tokens", "rel_error", "over_budget_share"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["model"], r["mode"], str(r["budget"]), str(r["n"]), f"{r['accuracy']:.3f}",
                      f"{r['mean_tokens']:.1f}", f"{r['rel_error']:+.3f}", f"{r['over_budget_share']:.3f}")
    console.print(table)
    checks = Table(title="bars")
    for col in ("bar", "value", "target", "result"):
        checks.add_column(col)
    for b in results:
        verdict = "[green]pass[/green]" if b["ok"] else "[red]FAIL[/red]"
        checks.add_row(b["bar"], f"{b['value']:+.3f}", b["target"], verdict)
    console.print(checks)
    console.print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="lcpo-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--no-s1", action="store_true", help="skip the s1 budget-forcing baseline")
    args, overrides = parser.parse_known_args(argv)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ws_overrides = [o for o in overrides if o.startswith("warmstart.")]
    train_overrides = [o for o in overrides if not o.startswith("warmstart.")]
    timings: dict[str, float] = {}

    start = time.perf_counter()
    ws_cfg = OmegaConf.to_object(_compose("warmstart", [*ws_overrides, f"output_dir={out / 'warmstart'}"]))
    assert isinstance(ws_cfg, WarmstartRunConfig)
    shutil.move(str(warmstart_from_config(ws_cfg)), out / "base")
    timings["warm-start"] = time.perf_counter() - start

    start = time.perf_counter()
    cfg: TrainConfig = validate(
        _compose("train", ["experiment=demo", "model=hf", f"model.path={out / 'base'}", f"output_dir={out / 'train'}",
                           *train_overrides])
    )
    train(cfg)
    shutil.copytree(out / "train" / "model", out / "model")
    timings["lcpo training"] = time.perf_counter() - start

    start = time.perf_counter()
    task = EvalTask(build_task(cfg.task), Grader(kind=cfg.task.grader, require_think=cfg.task.require_think))
    samples = out / "samples.jsonl"
    rows = evaluate_models({"base": out / "base", "lcpo": out / "model"}, [task], cfg.eval, rollout=protocol_rollout(cfg.rollout),
                           prompt=cfg.prompt, samples_path=samples)
    if not args.no_s1:
        rows += evaluate_models({"base": out / "base"}, [task], cfg.eval,
                                rollout=protocol_rollout(cfg.rollout, "budget_forcing"), prompt=cfg.prompt, samples_path=samples)
    timings["evaluation"] = time.perf_counter() - start

    results = bars(rows)
    write_report(rows, out)
    report = json.loads((out / "report.json").read_text())
    report.update({"bars": results, "wall_seconds": timings})
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    show(rows, results, timings)
    console.print(f"outputs in {out}/: report.json, report.md, plots (*.png), model/ (transformers format)")
    return report


if __name__ == "__main__":
    main()
