"""An evaluation suite: the datasets of a list, found by name in one folder, each one task of the report.

The reference keeps its test sets as ``<name>.parquet`` (verl rows) or ``<name>.json`` (lists of problems), one
copy per budget in ``data_<budget>/`` folders. Budget sentences are stripped when a file loads and the grid writes
its own, so any copy serves every budget: the folder itself is searched first, then its subfolders in sorted order.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from lcpo.algo.grading import Grader
from lcpo.config.task import FILE_FORMATS
from lcpo.eval.plan import EvalTask
from lcpo.tasks.files import load_file_task

log = logging.getLogger(__name__)


def find_datasets(data_dir: str | Path, names: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """Each name's file in ``data_dir`` and the names not found there (in ``names`` order)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data_dir: {root} is not a folder")
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    found: dict[str, Path] = {}
    for name in names:
        candidates = (folder / f"{name}.{suffix}" for folder in folders for suffix in FILE_FORMATS)
        path = next((p for p in candidates if p.is_file()), None)
        if path is not None:
            found[name] = path
    return found, [n for n in names if n not in found]


def suite_tasks(data_dir: str | Path, names: Sequence[str], grader: Grader) -> tuple[list[EvalTask], list[str]]:
    """The suite's datasets found in ``data_dir`` as evaluation tasks named by dataset (multiple-choice problems
    are graded by letter, the others with ``grader``), and the names that are missing. None found is an error
    that says what was looked for."""
    found, missing = find_datasets(data_dir, names)
    if not found:
        looked = ", ".join(f"{n}.{{{','.join(FILE_FORMATS)}}}" for n in names)
        raise FileNotFoundError(f"data_dir: none of the suite's datasets is in {data_dir} (looked for {looked})")
    if missing:
        log.warning(
            "suite: %d of %d datasets missing from %s: %s", len(missing), len(names), data_dir, ", ".join(missing)
        )
    tasks = [EvalTask(load_file_task(path, name=name), grader) for name, path in found.items()]
    return tasks, missing
