"""Prompt sources: the synthetic reasoning task (the embedded default) and file datasets."""

from __future__ import annotations

from lcpo.config.task import TaskConfig
from lcpo.grading import Grader
from lcpo.tasks.base import Problem, Task


def build_task(cfg: TaskConfig) -> Task:
    """The task named by ``cfg`` (file tasks are imported only when used)."""
    if cfg.name == "synthetic":
        from lcpo.tasks.synthetic import SyntheticTask

        return SyntheticTask(cfg.synthetic)
    from lcpo.tasks.files import load_file_task

    return load_file_task(cfg.path, kind=cfg.kind, limit=cfg.limit)


def build_grader(cfg: TaskConfig) -> Grader:
    """The grader of ``cfg``'s problems, as training, validation and evaluation all use it."""
    return Grader(
        kind=cfg.grader, require_think=cfg.require_think, timeout_s=cfg.grading_timeout_s, workers=cfg.grading_workers
    )


__all__ = ["Problem", "Task", "build_grader", "build_task"]
