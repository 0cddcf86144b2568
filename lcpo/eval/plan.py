"""What an evaluation runs: tasks with their fixed problem lists, the modes and budgets of the grid, and the cells
(model x task x mode x budget) in the order they are evaluated, each with its own seed."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

from lcpo.algo.budgets import Mode
from lcpo.algo.grading import Grader
from lcpo.config import FORCED, EvalGrid, PromptConfig, RolloutConfig
from lcpo.tasks import Problem, Task


@dataclass(frozen=True)
class EvalTask:
    """A task with the grader for its problems that are not multiple choice (those always use the letter grader)."""

    task: Task
    grader: Grader = Grader()

    @property
    def name(self) -> str:
        return self.task.name


@dataclass(frozen=True)
class Cell:
    """One (model, task, mode, budget) cell: one report row."""

    model: str
    task: EvalTask
    problems: list[Problem]
    mode: Mode | str  # FORCED for s1 budget forcing
    budget: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.model, self.task.name, str(self.mode), self.budget

    @property
    def seed(self) -> int:
        """Depends on the task, mode and budget only: every model sees the same random stream in a cell, and a cell
        evaluated alone (a resumed evaluation) samples as it would have in the whole grid."""
        return zlib.crc32(f"{self.task.name}/{self.mode}/{self.budget}".encode())


@dataclass(frozen=True)
class Plan:
    """What one model is evaluated on: tasks with their fixed problem lists, modes, budgets and sampling."""

    tasks: list[EvalTask]
    problem_sets: dict[str, list[Problem]]
    modes: list[Mode | str]  # budget modes, or FORCED alone for s1 budget forcing
    grid: EvalGrid
    rollout: RolloutConfig
    prompt: PromptConfig

    @classmethod
    def make(cls, tasks: Sequence[Task | EvalTask], grid: EvalGrid, rollout: RolloutConfig,
             prompt: PromptConfig) -> "Plan":
        eval_tasks = [t if isinstance(t, EvalTask) else EvalTask(t) for t in tasks]
        problem_sets = {t.name: t.task.eval_set(grid.problems, grid.seed) for t in eval_tasks}
        if len(problem_sets) != len(eval_tasks):
            raise ValueError(f"task names must be unique, got {[t.name for t in eval_tasks]}")
        modes = [FORCED] if rollout.name == "budget_forcing" else [Mode(m) for m in grid.modes]
        return cls(eval_tasks, problem_sets, modes, grid, rollout, prompt)

    @property
    def max_new_tokens(self) -> int:
        """The longest generation any cell asks for."""
        return max(self.grid.cap(mode, budget) for mode in self.modes for budget in self.grid.budgets)

    @property
    def problems_per_model(self) -> int:
        """Problems x modes x budgets: the progress bar's unit."""
        return len(self.modes) * len(self.grid.budgets) * sum(len(p) for p in self.problem_sets.values())

    def cells(self, model: str) -> Iterator[Cell]:
        """The cells of one model, task by task, then mode, then budget."""
        for task in self.tasks:
            for mode in self.modes:
                for budget in self.grid.budgets:
                    yield Cell(model, task, self.problem_sets[task.name], mode, budget)
