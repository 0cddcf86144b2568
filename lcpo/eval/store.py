"""Finished evaluation cells on disk, so that an interrupted evaluation resumes where it stopped.

Layout under an evaluation's output folder::

    cells/<model>/setup.json                   what the model's cells were made with (see :func:`setup`)
    cells/<model>/<task>/<mode>_<budget>.json  one finished cell: {"row": {...}, "samples": [{...}, ...]}

A cell is done when its file exists: it is written to a temporary name and renamed, so a file is never partial.
A second evaluation into the same folder loads the done cells instead of sampling them again, and refuses to start
(naming the keys) when a model with finished cells has a ``setup.json`` that differs from its own setup: cells made
with another grid, sampling, prompt, problem list or model cannot be mixed into one report. ``setup.json`` is
written with a model's first finished cell, so a run that failed before finishing any cell blocks nothing.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping

from lcpo.config.diff import differences, flatten
from lcpo.eval.cells import CellResult
from lcpo.eval.plan import Cell, Plan
from lcpo.eval.rows import EvalRow

CELLS_DIR = "cells"
SETUP = "setup.json"


def setup(plan: Plan, model: str, dtype: str | None) -> dict[str, Any]:
    """What a model's cells depend on, as flat ``key: value`` pairs: the model (a folder, resolved, or
    ``"<in memory>"`` for a live one) and its dtype, each task's problem list (count and checksum of the ids), and
    every key of the grid, the rollout (engine and sampling) and the prompt."""
    out: dict[str, Any] = {"model": model, "dtype": dtype}
    for name, problems in plan.problem_sets.items():
        ids = "\n".join(p.id for p in problems)
        out[f"tasks.{name}"] = f"{len(problems)} problems, crc32 {zlib.crc32(ids.encode()):08x}"
    out.update(flatten({"grid": asdict(plan.grid), "rollout": asdict(plan.rollout), "prompt": asdict(plan.prompt)}))
    return out


class CellStore:
    """The finished cells of the evaluations written to one folder (``<folder>/cells``)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.root = self.folder / CELLS_DIR
        self.setups: dict[str, dict[str, Any]] = {}

    def claim(self, model: str, own: Mapping[str, Any]) -> None:
        """Checks ``own``, the setup of ``model``'s cells, against the one recorded with its finished cells; raises
        ``ValueError`` naming every key that differs. ``own`` is recorded with the model's first finished cell."""
        own = json.loads(json.dumps(own))  # as it reads back from JSON
        path = self.root / _safe(model) / SETUP
        if path.is_file() and any(p.name != SETUP for p in path.parent.glob("*/*.json")):
            detail = differences(json.loads(path.read_text(encoding="utf-8")), own)
            if detail:
                raise ValueError(
                    f"{self.folder}: holds cells of model {model!r} made with another setup ({detail}); evaluate into "
                    f"another output_dir, or delete {path.parent} to recompute them"
                )
        self.setups[model] = own

    def finished(self) -> set[tuple[str, str, str, int]]:
        """The keys ``(model, task, mode, budget)`` of every cell on disk."""
        done = set()
        for path in self.root.glob("*/*/*.json"):
            if path.name != SETUP:
                row = json.loads(path.read_text(encoding="utf-8"))["row"]
                done.add((row["model"], row["task"], row["mode"], row["budget"]))
        return done

    def load(self, cell: Cell) -> EvalRow:
        return EvalRow.from_dict(json.loads(self._path(cell.key).read_text(encoding="utf-8"))["row"])

    def save(self, cell: Cell, result: CellResult) -> None:
        """Writes a finished cell (and, with a model's first cell, the setup :meth:`claim` was given)."""
        if cell.model in self.setups:
            _write_json(self.root / _safe(cell.model) / SETUP, self.setups.pop(cell.model))
        _write_json(self._path(cell.key), {"row": result.row.to_dict(), "samples": result.samples})

    def samples(self, row: EvalRow) -> list[dict]:
        """The sample records of the cell behind ``row``."""
        key = (row.model, row.task, row.mode, row.budget)
        return json.loads(self._path(key).read_text(encoding="utf-8"))["samples"]

    def write_samples(self, rows: Iterable[EvalRow], path: Path) -> Path:
        """``samples.jsonl``: the samples of every row's cell, in the order of ``rows``."""
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as handle:
            for row in rows:
                for record in self.samples(row):
                    handle.write(json.dumps(record) + "\n")
        partial.replace(path)
        return path

    def _path(self, key: tuple[str, str, str, int]) -> Path:
        model, task, mode, budget = key
        return self.root / _safe(model) / _safe(task) / f"{_safe(mode)}_{budget}.json"


def _safe(name: str) -> str:
    """A file name for a model or task name (which may be a path)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("._") or "_"


def _write_json(path: Path, data: Any) -> None:
    """Writes to a temporary name and renames it: readers see the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(partial, path)
