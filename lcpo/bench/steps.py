"""``python -m lcpo.bench [--base DIR] [--steps N] [--out DIR] [overrides]`` (``make bench``): step time and tokens/s
of rollouts and updates at the demo's settings.

Runs a few LCPO steps of ``experiment=demo`` (from the demo's warm-started model when ``outputs/demo/base``
exists, else from the randomly initialised tiny model, whose responses run to the cap) and reports the medians of
the per-step metrics the trainer logs. Overrides are training overrides, e.g. ``algo.group_size=16``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from lcpo.config import compose_config, validate
from lcpo.training.build import run

METRICS = {
    "perf/step_seconds": "step time (s)",
    "perf/rollout_seconds": "rollout time (s)",
    "perf/rollout_tokens_per_s": "rollout tokens/s (generated)",
    "perf/train_tokens_per_s": "update tokens/s (prompt + response)",
    "rollout/mean_length": "mean response length (tokens)",
}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="lcpo-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="rollout steps; the first is dropped as warm-up")
    parser.add_argument("--base", type=Path, default=Path("outputs/demo/base"), help="model folder to start from")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args, overrides = parser.parse_known_args(argv)
    model = ["model=hf", f"model.path={args.base}"] if (args.base / "config.json").is_file() else []
    cfg = validate(compose_config("train", [
        "experiment=demo", *model, f"trainer.max_steps={args.steps}", "logger=csv", "trainer.ckpt_every_n_steps=0",
        f"output_dir={args.out}", *overrides,
    ]))
    run(cfg)
    rows = []
    for path in sorted((args.out / "csv").glob("version_*/metrics.csv")):
        with path.open() as f:
            rows += [r for r in csv.DictReader(f) if r.get("perf/step_seconds")]
    measured = rows[1:] or rows
    result = {
        "model": str(args.base) if model else "random tiny model",
        "steps_measured": len(measured),
        "prompts_x_samples": f"{cfg.algo.prompts_per_step} x {cfg.algo.group_size}",
        **{key: statistics.median(float(r[key]) for r in measured) for key in METRICS},
    }
    (args.out / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    table = Table(title=f"lcpo bench: median over {len(measured)} steps ({result['prompts_x_samples']}, {result['model']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in METRICS.items():
        table.add_row(label, f"{result[key]:.2f}")
    Console().print(table)
    return result


if __name__ == "__main__":
    main()
