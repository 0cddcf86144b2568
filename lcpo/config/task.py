"""The ``task`` group: where problems come from (the synthetic task or a file) and how answers are graded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lcpo.config.checks import one_of, positive

#: How training walks a file's problems (see ``TaskConfig``).
SAMPLINGS = ("epochs", "replacement")
#: What the synthetic task's check lines say about the prompt's budget (see ``lcpo.tasks.synthetic``).
BUDGET_IN_TRACE = ("none", "restate", "countdown")


@dataclass
class SyntheticTaskConfig:
    """Difficulty knobs: ``min_terms``..``max_terms`` numbers in 0..``max_value`` are added modulo ``modulus``.

    ``distinct`` draws the terms without replacement, so no lookup of a term in the question is ambiguous.
    ``budget_in_trace`` is what check lines say about the prompt's budget: none, restate, countdown (see the
    task's module). How many check lines a trace carries is the warm-start's choice
    (``warmstart.min_verbosity``..``max_verbosity``).
    """

    min_terms: int = 3
    max_terms: int = 3
    max_value: int = 9
    modulus: int = 10
    distinct: bool = True
    eval_size: int = 256
    budget_in_trace: str = "countdown"

    def __post_init__(self) -> None:
        if not 2 <= self.min_terms <= self.max_terms:
            raise ValueError(
                f"task.synthetic needs 2 <= min_terms <= max_terms, got {self.min_terms}, {self.max_terms}"
            )
        if self.max_value < 1 or self.modulus < 2:
            raise ValueError(
                f"task.synthetic needs max_value >= 1 and modulus >= 2, got {self.max_value}, {self.modulus}"
            )
        if self.distinct and self.max_terms > self.max_value + 1:
            raise ValueError(
                f"task.synthetic.distinct needs max_terms <= max_value + 1, got {self.max_terms} > {self.max_value + 1}"
            )
        one_of("task.synthetic.budget_in_trace", self.budget_in_trace, BUDGET_IN_TRACE)
        positive("task.synthetic.eval_size", self.eval_size)


@dataclass
class TaskConfig:
    """Where problems come from (the synthetic task, or a JSONL/parquet file of problems or multiple choice) and
    how their answers are graded: ``grader`` (math-verify or option letter), ``require_think`` (the answer must
    follow ``</think>``), ``grading_workers`` (processes that grade a batch in parallel; 0 grades in this
    process) and ``grading_timeout_s`` (the most one answer may take). ``sampling`` is how training walks a file's
    problems: ``epochs`` (shuffled epochs without replacement, seeded and resumable, as the reference does) or
    ``replacement`` (independent draws); the synthetic task makes a fresh problem every draw."""

    name: str = "synthetic"
    path: Optional[str] = None
    kind: str = "auto"
    limit: Optional[int] = None
    sampling: str = "epochs"
    grader: str = "math"
    require_think: bool = True
    grading_workers: int = 2
    grading_timeout_s: float = 5.0
    synthetic: SyntheticTaskConfig = field(default_factory=SyntheticTaskConfig)

    def __post_init__(self) -> None:
        one_of("task.name", self.name, ("synthetic", "jsonl", "parquet"))
        one_of("task.kind", self.kind, ("auto", "math", "choice"))
        one_of("task.sampling", self.sampling, SAMPLINGS)
        one_of("task.grader", self.grader, ("math", "choice"))
        positive("task.grading_workers", self.grading_workers, allow_zero=True)
        positive("task.grading_timeout_s", self.grading_timeout_s)
        if self.name != "synthetic":
            if not self.path:
                raise ValueError(f"task.path is required for task={self.name}")
            if not Path(self.path).expanduser().is_file():
                raise ValueError(f"task.path does not exist: {self.path}")
            suffix = Path(self.path).suffix.lower()
            if suffix != f".{self.name}":
                fix = f"use task={suffix[1:]}" if suffix in (".jsonl", ".parquet") else "name it .jsonl or .parquet"
                raise ValueError(f"task={self.name} reads .{self.name} files, but task.path is {self.path}: {fix}")
        if self.limit is not None:
            positive("task.limit", self.limit)
