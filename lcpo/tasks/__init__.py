"""Prompt sources: the synthetic reasoning task (the embedded default) and file datasets."""

from __future__ import annotations

from lcpo.tasks.base import Problem, Task


def build_task(cfg) -> Task:
    """The task named by a :class:`lcpo.config.TaskConfig` (file tasks are imported only when used)."""
    if cfg.name == "synthetic":
        from lcpo.tasks.synthetic import SyntheticTask

        return SyntheticTask(cfg.synthetic)
    from lcpo.tasks.files import load_file_task

    return load_file_task(cfg.path, kind=cfg.kind, limit=cfg.limit)


__all__ = ["Problem", "Task", "build_task"]
