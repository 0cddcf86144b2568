"""The ``task`` group: where problems come from (the synthetic task or a file) and how answers are graded."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lcpo.algo.answers import KINDS
from lcpo.config.checks import in_range, one_of, positive

#: File tasks by suffix: JSON lines, a JSON list (the reference's test sets), parquet (plain or verl rows).
FILE_FORMATS = ("jsonl", "json", "parquet")
#: How training walks a file's problems (see ``TaskConfig``).
SAMPLINGS = ("epochs", "replacement")
#: Whether the synthetic task's lines carry budget arithmetic (see ``lcpo.tasks.synthetic``).
BUDGET_IN_TRACE = ("none", "countdown")
#: The synthetic task's term labels, counting down to ``A``: ``k`` terms are labelled ``LABELS[k-1]`` .. ``A``.
LABELS = string.ascii_uppercase


@dataclass
class SyntheticTaskConfig:
    """Difficulty knobs: ``min_terms``..``max_terms`` digits in 0..``max_value``, added modulo ``modulus``.

    A digit is 0 with chance ``zero_share``, else uniform (the default, 0: uniform). Zeros make a response that
    stops before its last step partly right, the fewer steps it leaves the more often (with 0.5: 0.55 with one step
    left, 0.33 with two, 0.21 with three, against 0.1 for uniform digits), as a reasoning model's early answer often
    is. That gives the max reward, 0 for a wrong answer, something besides a lucky guess to teach where to stop, but
    it also makes budget forcing's truncated answers right more often: on the demo, zeros at 0.5 passed max mode's
    bar and failed "lcpo - s1" at budget 32 (docs/measurements.md). ``distinct`` draws the digits of a problem
    without replacement (labels already make every lookup unambiguous).
    ``budget_in_trace``: none or countdown (see the task's module). ``countdown_gradient``: whether RL's policy
    gradient covers the countdown's tokens (the policy still writes them, and the KL term covers them); by default
    it does not, so the count stays the warm-start's arithmetic and RL credits the decisions taken on it. How many check
    lines a warm-start trace carries, and whether it stops early, is the warm-start's draw (``warmstart.*``).
    """

    min_terms: int = 2
    max_terms: int = 7
    max_value: int = 9
    modulus: int = 10
    distinct: bool = False
    zero_share: float = 0.0
    eval_size: int = 256
    budget_in_trace: str = "countdown"
    countdown_gradient: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_terms <= self.max_terms <= len(LABELS):
            raise ValueError(
                f"task.synthetic needs 1 <= min_terms <= max_terms <= {len(LABELS)}, "
                f"got {self.min_terms}, {self.max_terms}"
            )
        if not 1 <= self.max_value <= 9 or not 2 <= self.modulus <= 10:
            raise ValueError(
                "task.synthetic needs one-digit terms and sums (1 <= max_value <= 9, 2 <= modulus <= 10), "
                f"got max_value={self.max_value}, modulus={self.modulus}"
            )
        if self.distinct and self.max_terms > self.max_value + 1:
            raise ValueError(
                f"task.synthetic.distinct needs max_terms <= max_value + 1, got {self.max_terms} > {self.max_value + 1}"
            )
        in_range("task.synthetic.zero_share", self.zero_share, 0.0, 1.0)
        if self.distinct and self.zero_share:
            raise ValueError("task.synthetic.distinct draws each digit once, so it cannot also draw extra zeros: "
                             f"set task.synthetic.zero_share=0 with it (got {self.zero_share})")
        one_of("task.synthetic.budget_in_trace", self.budget_in_trace, BUDGET_IN_TRACE)
        positive("task.synthetic.eval_size", self.eval_size)


@dataclass
class TaskConfig:
    """Where problems come from (the synthetic task, or a JSONL/JSON/parquet file of problems, multiple choice or the
    reference's verl rows, detected by their columns) and
    how their answers are graded: ``grader`` (``math``: math-verify, ``choice``: option letter, ``exact``: the same
    string, which the synthetic task's one-spelling answers use), ``require_think`` (the answer must
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
        one_of("task.name", self.name, ("synthetic", *FILE_FORMATS))
        one_of("task.kind", self.kind, ("auto", "math", "choice"))
        one_of("task.sampling", self.sampling, SAMPLINGS)
        one_of("task.grader", self.grader, KINDS)
        positive("task.grading_workers", self.grading_workers, allow_zero=True)
        positive("task.grading_timeout_s", self.grading_timeout_s)
        if self.name != "synthetic":
            if not self.path:
                raise ValueError(f"task.path is required for task={self.name}")
            if not Path(self.path).expanduser().is_file():
                raise ValueError(f"task.path does not exist: {self.path}")
            suffix = Path(self.path).suffix.lower()
            if suffix != f".{self.name}":
                known = suffix[1:] in FILE_FORMATS
                fix = f"use task={suffix[1:]}" if known else "name it .jsonl, .json or .parquet"
                raise ValueError(f"task={self.name} reads .{self.name} files, but task.path is {self.path}: {fix}")
        if self.limit is not None:
            positive("task.limit", self.limit)
