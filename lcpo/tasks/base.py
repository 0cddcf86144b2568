"""What a task is to the trainer and the evaluator: a source of problems with verifiable answers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Problem:
    """One question with its gold answer.

    ``choices`` is set for multiple-choice problems (the gold ``answer`` is then a letter); ``meta`` carries
    free-form provenance (source file and line, difficulty, ...) that reports may show.
    """

    id: str
    question: str
    answer: str
    choices: tuple[str, ...] | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_choice(self) -> bool:
        return self.choices is not None


class Task(Protocol):
    """A problem source. Training draws with :meth:`sample`; evaluation takes a fixed list from :meth:`eval_set`."""

    name: str

    def sample(self, rng: random.Random) -> Problem:
        """One training problem drawn with ``rng`` (the caller owns the generator, so data order is reproducible)."""
        ...

    def eval_set(self, n: int | None, seed: int) -> list[Problem]:
        """A fixed evaluation list: the first ``n`` (all when None) problems, deterministic given ``seed``."""
        ...
