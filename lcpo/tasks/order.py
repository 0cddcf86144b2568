"""The order training walks a fixed list of problems in: shuffled epochs without replacement, as the reference does.

Every epoch is a fresh permutation seeded by (run seed, epoch), and the problem at position ``k`` of the endless walk
is a function of (seed, k) alone. The prompt stream reads positions from (step, rank), so a resumed run, or a run on
another number of ranks, sees the same sequence of problems with no stored state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from lcpo.tasks.base import Problem


@lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"lcpo-epoch:{seed}:{epoch}").shuffle(order)
    return tuple(order)


@dataclass(frozen=True)
class ShuffledEpochs:
    """Positions ``start .. start + count - 1`` of the walk over ``problems`` in seeded shuffled epochs."""

    problems: Sequence[Problem]
    seed: int

    def __post_init__(self) -> None:
        if not self.problems:
            raise ValueError("shuffled epochs need at least one problem")

    def take(self, start: int, count: int) -> list[Problem]:
        n = len(self.problems)
        return [self.problems[_permutation(n, self.seed, k // n)[k % n]] for k in range(start, start + count)]
