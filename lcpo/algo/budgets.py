"""Budget distributions and budget/mode mixtures: what length each prompt asks for, as data.

Every example carries its :class:`BudgetSpec`; rewards read it from there and never re-parse the prompt text, so
a wording change (``lcpo.config.PromptConfig``) can never silently change what the reward believes the budget was.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

MODES = ("exact", "max", "none")


@dataclass(frozen=True)
class BudgetSpec:
    """The length instruction attached to one prompt: ``mode`` in ``MODES`` and a token ``budget`` (None for "none")."""

    mode: str
    budget: int | None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown budget mode {self.mode!r}; expected one of {MODES}")
        if self.mode == "none" and self.budget is not None:
            raise ValueError("mode 'none' takes no budget")
        if self.mode != "none" and (self.budget is None or self.budget < 1):
            raise ValueError(f"mode {self.mode!r} needs a positive budget, got {self.budget!r}")

    def signed(self) -> int:
        """The reference's signed encoding: +N exact, -N max, -1 no budget."""
        if self.mode == "none":
            return -1
        assert self.budget is not None
        return self.budget if self.mode == "exact" else -self.budget

    @classmethod
    def from_signed(cls, value: int) -> "BudgetSpec":
        """Inverse of :meth:`signed`. -1 means no budget (a max budget of 1 token is not representable, as upstream)."""
        if value == -1:
            return cls("none", None)
        if value == 0:
            raise ValueError("0 is not a valid signed budget")
        return cls("exact", value) if value > 0 else cls("max", -value)


class BudgetDistribution(Protocol):
    """Draws one token budget from a seeded ``random.Random``."""

    def sample(self, rng: random.Random) -> int: ...

    @property
    def smallest(self) -> int:
        """The smallest budget this distribution can produce."""
        ...

    @property
    def largest(self) -> int:
        """The largest budget this distribution can produce (used to check generation caps)."""
        ...


@dataclass(frozen=True)
class UniformBudget:
    """Uniform integer on [low, high], both inclusive: the reference's default is [100, 4000]."""

    low: int = 100
    high: int = 4000

    def __post_init__(self) -> None:
        if self.low < 1 or self.low > self.high:
            raise ValueError(f"budget.low must satisfy 1 <= budget.low <= budget.high, got low={self.low}, high={self.high}")

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    @property
    def smallest(self) -> int:
        return self.low

    @property
    def largest(self) -> int:
        return self.high


@dataclass(frozen=True)
class LogUniformBudget:
    """``int(2 ** U(low_exp, high_exp))``, the reference's log-uniform variant (defaults 2^8 .. 2^14.5)."""

    low_exp: float = 8.0
    high_exp: float = 14.5

    def __post_init__(self) -> None:
        if not 0 <= self.low_exp <= self.high_exp <= 62:  # NaN fails too; 2**62 keeps budgets integers
            raise ValueError(
                f"budget.low_exp must satisfy 0 <= budget.low_exp <= budget.high_exp <= 62, got {self.low_exp}, {self.high_exp}"
            )

    def sample(self, rng: random.Random) -> int:
        return max(1, int(2 ** rng.uniform(self.low_exp, self.high_exp)))

    @property
    def smallest(self) -> int:
        return max(1, int(2**self.low_exp))

    @property
    def largest(self) -> int:
        return int(math.floor(2**self.high_exp))


@dataclass(frozen=True)
class FixedBudget:
    """Always the same budget: evaluation sets, or ablations with one target."""

    value: int = 1024

    def __post_init__(self) -> None:
        if self.value < 1:
            raise ValueError(f"budget.value must be >= 1, got {self.value}")

    def sample(self, rng: random.Random) -> int:
        return self.value

    @property
    def smallest(self) -> int:
        return self.value

    @property
    def largest(self) -> int:
        return self.value


@dataclass(frozen=True)
class ChoiceBudget:
    """One of a list of budgets, uniformly."""

    values: tuple[int, ...] = (512, 1024, 2048, 3600)

    def __post_init__(self) -> None:
        if not self.values or min(self.values) < 1:
            raise ValueError(f"budget.values must be a non-empty list of budgets >= 1, got {list(self.values)}")

    def sample(self, rng: random.Random) -> int:
        return rng.choice(self.values)

    @property
    def smallest(self) -> int:
        return min(self.values)

    @property
    def largest(self) -> int:
        return max(self.values)


@dataclass(frozen=True)
class BudgetSampler:
    """Draws a (mode, budget) per example: ``max_share`` of max prompts, ``none_share`` without budget, rest exact."""

    distribution: BudgetDistribution
    max_share: float = 0.0
    none_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_share", "none_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise ValueError(f"budget.{name} must lie in [0, 1], got {value}")
        if self.max_share + self.none_share > 1.0 + 1e-9:
            raise ValueError(
                f"budget.max_share + budget.none_share must be <= 1, got {self.max_share} + {self.none_share}"
            )

    def sample(self, rng: random.Random) -> BudgetSpec:
        u = rng.random()
        if u < self.none_share:
            return BudgetSpec("none", None)
        budget = self.distribution.sample(rng)
        if u < self.none_share + self.max_share:
            return BudgetSpec("max", budget)
        return BudgetSpec("exact", budget)


def spread_budgets(distribution: BudgetDistribution, n: int = 4) -> list[int]:
    """``n`` budgets spread over the distribution's range: the midpoints of its ``n`` equal parts."""
    lo, hi = distribution.smallest, distribution.largest
    return sorted({round(lo + (hi - lo) * (i + 0.5) / n) for i in range(n)})
