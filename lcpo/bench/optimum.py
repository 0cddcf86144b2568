"""``python -m lcpo.bench optimum [overrides]``: the demo's bars as scored by the reward's own best policy.

The policy and why it matters: :mod:`lcpo.eval.optimum`. ``--json`` prints the rows and bars as JSON. Overrides are ``lcpo.cli.train``'s (default: ``experiment=demo_max``, the
demo's final stage, whose mixed reward scores exact rows like stage 1); e.g. ``reward.alpha=0.1``.
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from rich.console import Console
from rich.table import Table

from lcpo.config import TrainConfig, compose_config, validate
from lcpo.eval.optimum import optimum_bars


def load_config(overrides: Sequence[str]) -> TrainConfig:
    """The training config these analyses read (reward, task, prompt, evaluation grid): ``experiment=demo_max``
    under ``overrides``; nothing is trained or written, so the model and output folder only complete it."""
    cfg = validate(compose_config("train", ["experiment=demo_max", "model=tiny", "output_dir=outputs/optimum",
                                            *overrides]))
    if cfg.task.name != "synthetic":
        raise ValueError(f"task={cfg.task.name}: the best policy is known for the synthetic task only")
    return cfg


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="lcpo-bench optimum", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows and bars as JSON")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(overrides)
    typed, results = optimum_bars(cfg)
    rows = [r.to_dict() for r in typed]
    if args.json:
        print(json.dumps({"rows": rows, "bars": results}, indent=1))
        return {"rows": rows, "bars": results}
    console = Console()
    table = Table(title=f"best policy under reward={cfg.reward.name} (alpha {cfg.reward.alpha}, "
                        f"max_alpha {cfg.reward.max_alpha}, delta {cfg.reward.delta})")
    for col in ("mode", "budget", "accuracy", "mean_tokens", "rel_error", "over_budget_share"):
        table.add_column(col, justify="right")
    for r in typed:
        if r.model == "lcpo":
            table.add_row(r.mode, str(r.budget), f"{r.accuracy:.3f}", f"{r.mean_tokens:.1f}", f"{r.rel_error:+.3f}",
                          f"{r.over_budget_share:.3f}")
    console.print(table)
    bars = Table(title="the demo's bars, as this policy scores them")
    for col in ("bar", "value", "target", "result"):
        bars.add_column(col)
    for b in results:
        bars.add_row(b["bar"], f"{b['value']:+.3f}", b["target"], "pass" if b["ok"] else "FAIL")
    console.print(bars)
    return {"rows": rows, "bars": results}
