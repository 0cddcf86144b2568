"""Prompt sources: the synthetic reasoning task (the embedded default) and file datasets."""

from __future__ import annotations

from typing import Optional

from lcpo.config.task import TaskConfig
from lcpo.algo.grading import Grader
from lcpo.tasks.base import Problem, Task
from lcpo.tasks.order import ShuffledEpochs


def build_task(cfg: TaskConfig) -> Task:
    """The task named by ``cfg`` (file tasks are imported only when used)."""
    if cfg.name == "synthetic":
        from lcpo.tasks.synthetic import SyntheticTask

        return SyntheticTask(cfg.synthetic)
    from lcpo.tasks.files import load_file_task

    return load_file_task(cfg.path, kind=cfg.kind, limit=cfg.limit)


def build_epochs(cfg: TaskConfig, task: Task, seed: int) -> Optional[ShuffledEpochs]:
    """The shuffled-epoch walk over a file task's problems when ``cfg.sampling`` asks for it (else None: draws with
    replacement, and the synthetic task, which has no fixed list)."""
    if cfg.name == "synthetic" or cfg.sampling != "epochs":
        return None
    return ShuffledEpochs(task.problems, seed)


def data_sources(task: Task) -> tuple[str, ...]:
    """The ``data_source`` values of a file task's problems, in first-seen order (none for the synthetic task)."""
    return tuple(dict.fromkeys(str(p.meta.get("data_source", "")) for p in getattr(task, "problems", ())))


def build_grader(cfg: TaskConfig) -> Grader:
    """The grader of ``cfg``'s problems, as training, validation and evaluation all use it."""
    return Grader(
        kind=cfg.grader, require_think=cfg.require_think, timeout_s=cfg.grading_timeout_s, workers=cfg.grading_workers
    )


__all__ = ["Problem", "ShuffledEpochs", "Task", "build_epochs", "build_grader", "build_task", "data_sources"]
