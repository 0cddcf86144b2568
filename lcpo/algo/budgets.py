"""Budget distributions and budget/mode mixtures: what length each prompt asks for, as data.

Every example carries its :class:`BudgetSpec`; rewards read it from there and never re-parse the prompt text, so
a wording change (``lcpo.config.PromptConfig``) can never silently change what the reward believes the budget was.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Mode(str, Enum):
    """How a prompt states its budget: think for exactly N tokens, for at most N tokens, or no budget at all.

    One type from the sampler to the prompt, the reward, the rollout metrics and the evaluation report. A ``str``
    enum, so that a mode equals, prints, formats and serialises (JSON, CSV) as its plain value, ``"exact"``; records
    bound for wandb tables (report rows, sample tables) hold that value, since wandb types a subclass apart.
    Tensors carry a mode as its :attr:`code`.
    """

    EXACT = "exact"
    MAX = "max"
    NONE = "none"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def code(self) -> int:
        """The integer that stands for this mode in tensors (reward inputs, rollout batches): its place in the enum."""
        return list(Mode).index(self)


@dataclass(frozen=True)
class BudgetSpec:
    """The length instruction attached to one prompt: a :class:`Mode` and a token ``budget`` (None for no budget).

    A mode given by its value (``"exact"``) is turned into the enum, so that specs compare and hash alike.
    """

    mode: Mode
    budget: int | None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            raise ValueError(f"unknown budget mode {self.mode!r}; expected one of {[m.value for m in Mode]}") from None
        if self.mode is Mode.NONE and self.budget is not None:
            raise ValueError("mode 'none' takes no budget")
        if self.mode is not Mode.NONE and (self.budget is None or self.budget < 1):
            raise ValueError(f"mode {self.mode.value!r} needs a positive budget, got {self.budget!r}")

    def signed(self) -> int:
        """The reference's signed encoding: +N exact, -N max, -1 no budget."""
        if self.mode is Mode.NONE:
            return -1
        assert self.budget is not None
        return self.budget if self.mode is Mode.EXACT else -self.budget

    @classmethod
    def from_signed(cls, value: int) -> "BudgetSpec":
        """Inverse of :meth:`signed`. -1 means no budget (a max budget of 1 token is not representable, as upstream)."""
        if value == -1:
            return cls(Mode.NONE, None)
        if value == 0:
            raise ValueError("0 is not a valid signed budget")
        return cls(Mode.EXACT, value) if value > 0 else cls(Mode.MAX, -value)


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
    """Uniform integer on [low, high], both inclusive (the reference: [100, 4000])."""

    low: int
    high: int

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
    """``int(2 ** U(low_exp, high_exp))``, the reference's log-uniform variant (there 2^8 .. 2^14.5)."""

    low_exp: float
    high_exp: float

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

    value: int

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

    values: tuple[int, ...]

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
    max_share: float
    none_share: float

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
            return BudgetSpec(Mode.NONE, None)
        budget = self.distribution.sample(rng)
        if u < self.none_share + self.max_share:
            return BudgetSpec(Mode.MAX, budget)
        return BudgetSpec(Mode.EXACT, budget)


def spread_budgets(distribution: BudgetDistribution, n: int = 4) -> list[int]:
    """``n`` budgets spread over the distribution's range: the midpoints of its ``n`` equal parts."""
    lo, hi = distribution.smallest, distribution.largest
    return sorted({round(lo + (hi - lo) * (i + 0.5) / n) for i in range(n)})
