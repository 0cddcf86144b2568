"""Sweep aggregation: one table and a Pareto plot over every job of a Hydra multirun.

``python -m lcpo.report multirun/alpha/2025-01-01_12-00-00`` (console script ``lcpo-report``) finds every job
folder (one holding ``.hydra/overrides.yaml``) and every evaluation ``report.json`` inside it (the end-of-run
evaluation, and any ``lcpo.cli.evaluate`` run saved there; not the periodic validation under ``val/``, which uses a
smaller grid), and writes, next to the jobs unless ``--out`` says otherwise:

- ``summary.csv`` and ``summary.md``: one row per job x report row (model, task, mode, budget), with the job's
  overrides as columns (``reward.alpha``, ``reward``, ``+sweep``, ...), so a sweep reads as a table;
- ``pareto.png``: accuracy against mean tokens for every row, coloured by the swept value, with the frontier of
  rows no other row beats on both.

Jobs that learned nothing (every group had equal rewards at every logged step, so every advantage was zero) are
named at the top of ``summary.md`` and in the printed line: their rows measure the starting model, not the sweep.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any, Sequence

import yaml

from lcpo.eval import plots
from lcpo.eval.rows import EvalRow
from lcpo.config.eval import VALIDATION_DIR
from lcpo.errors import cli_boundary

REPORT_NAME = "report.json"
#: The training metric that says which share of groups carried no learning signal (``lcpo.algo.metrics``).
ZERO_SIGNAL = "rollout/zero_signal_share"


def parse_overrides(path: Path) -> dict[str, str]:
    """A job's ``.hydra/overrides.yaml`` as ``{key: value}``; ``+``/``++``/``~`` prefixes are kept in the key
    (``+sweep`` says the option was added, which is part of what was run)."""
    items = yaml.safe_load(path.read_text()) or []
    overrides = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        overrides[key] = value if sep else ""
    return overrides


def collect(multirun_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every report row of every job, with ``job`` (its folder, relative), its overrides and the metrics.

    Returns the rows and the override keys (in first-seen order). Raises ``FileNotFoundError`` when there is
    nothing to aggregate, saying what was looked for.
    """
    root = Path(multirun_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    jobs = sorted(p.parent.parent for p in root.rglob(".hydra/overrides.yaml"))
    if not jobs:
        raise FileNotFoundError(f"{root}: no Hydra jobs found (no <job>/.hydra/overrides.yaml below it)")
    rows: list[dict[str, Any]] = []
    keys: dict[str, None] = {}
    for job in jobs:
        overrides = parse_overrides(job / ".hydra" / "overrides.yaml")
        keys.update(dict.fromkeys(overrides))
        for report in sorted(job.rglob(REPORT_NAME)):
            if report.relative_to(job).parts[0] == VALIDATION_DIR:
                continue
            for row in read_rows(report):
                entry = {"job": str(job.relative_to(root)), "report": str(report.relative_to(job)), **overrides}
                rows.append(entry | {k: v for k, v in row.to_dict().items() if k != "lengths"})
    if not rows:
        raise FileNotFoundError(
            f"{root}: {len(jobs)} Hydra jobs but no {REPORT_NAME} in any of them (run the evaluation in each job)"
        )
    return rows, list(keys)


def read_rows(report: Path) -> list[EvalRow]:
    """The rows of one ``report.json``; a file that is not one (cut short, edited by hand) is named in the error."""
    try:
        rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{report}: not an evaluation report ({type(err).__name__}: {err})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{report}: not an evaluation report ('rows' is not a list of objects)")
    try:
        return [EvalRow.from_dict(r) for r in rows]
    except ValueError as err:
        raise ValueError(f"{report}: not an evaluation report ({err})") from None


def varying_keys(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    """The overrides whose value differs between rows: the sweep's axes. Overrides every job shares
    (``+sweep=alpha``, fixed settings) say nothing about one point, so the Markdown table and the plot omit them."""
    return [k for k in keys if len({r.get(k) for r in rows}) > 1]


def sweep_label(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    """Per row, its values of the varying overrides (``"reward.alpha=0.001"``); the job when none varies."""
    varying = varying_keys(rows, keys)
    if not varying:
        return [r["job"] for r in rows]
    return [", ".join(f"{k}={r.get(k, '')}" for k in varying) for r in rows]


def write_summary(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], out_dir: Path, note: str = ""
) -> dict[str, Path]:
    """Writes ``summary.csv`` (every override), ``summary.md`` (the varying ones, after ``note`` if any) and
    ``pareto.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["job", *keys, *[c for c in plots.REPORT_COLUMNS if c not in keys]]
    extra = [c for c in dict.fromkeys(k for r in rows for k in r) if c not in columns]
    paths = {"summary.csv": out_dir / "summary.csv", "summary.md": out_dir / "summary.md"}
    with paths["summary.csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns + extra, restval="")
        writer.writeheader()
        writer.writerows(rows)
    shown = ["job", *varying_keys(rows, keys), *columns[1 + len(keys) :]]
    paths["summary.md"].write_text(
        f"# Sweep summary: {len(rows)} rows\n\n" + (f"**{note}**\n\n" if note else "")
        + plots.markdown_table(rows, shown)
    )
    points = [EvalRow.from_dict(r) for r in rows]
    paths["pareto.png"] = plots.plot_pareto(points, sweep_label(rows, keys), out_dir / "pareto.png", title="sweep")
    return paths


def zero_signal_jobs(root: Path, jobs: Sequence[str]) -> list[str]:
    """The jobs whose training logged ``rollout/zero_signal_share`` 1.0 at every step: no group ever had two
    different rewards, so no update moved the policy (e.g. a model that never answers correctly under a reward whose
    length term group normalisation cancels)."""
    dead = []
    for job in jobs:
        shares = [
            float(row[ZERO_SIGNAL])
            for metrics in sorted((root / job).glob("csv/version_*/metrics.csv"))
            for row in csv.DictReader(metrics.open(newline=""))
            if row.get(ZERO_SIGNAL) not in (None, "")
        ]
        if shares and min(shares) >= 1.0:
            dead.append(job)
    return dead


def zero_signal_note(jobs: Sequence[str]) -> str:
    """One sentence naming the jobs that learned nothing; empty when there are none."""
    if not jobs:
        return ""
    return (
        f"{len(jobs)} job(s) learned nothing: zero signal at every step (every group's rewards were equal), so their "
        f"rows show the starting model: {', '.join(jobs)}"
    )


@cli_boundary("lcpo-report")
def main(argv: Sequence[str] | None = None) -> None:
    """``lcpo-report MULTIRUN_DIR [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="lcpo-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("multirun_dir", type=Path, help="a Hydra multirun folder (holding one folder per job)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the summary (default: multirun_dir)")
    args = parser.parse_args(argv)
    rows, keys = collect(args.multirun_dir)
    note = zero_signal_note(zero_signal_jobs(args.multirun_dir, sorted({r["job"] for r in rows})))
    paths = write_summary(rows, keys, args.out or args.multirun_dir, note)
    if note:
        print(f"warning: {note}")
    print(f"{len(rows)} rows from {len({r['job'] for r in rows})} jobs -> " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
