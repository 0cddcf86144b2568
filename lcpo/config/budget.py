"""The ``budget`` group: how each prompt's token budget is drawn, and the mixture of exact/max/no-budget modes."""

from __future__ import annotations

from dataclasses import dataclass, field

from lcpo.algo.budgets import (
    BudgetDistribution,
    BudgetSampler,
    ChoiceBudget,
    FixedBudget,
    LogUniformBudget,
    UniformBudget,
)
from lcpo.config.checks import one_of


@dataclass
class BudgetConfig:
    """Budget distribution (``name``) and the mode mixture: ``max_share`` max prompts, ``none_share`` unbudgeted."""

    name: str = "uniform"
    low: int = 100
    high: int = 4000
    low_exp: float = 8.0
    high_exp: float = 14.5
    value: int = 1024
    values: list[int] = field(default_factory=lambda: [512, 1024, 2048, 3600])
    max_share: float = 0.0
    none_share: float = 0.0

    def __post_init__(self) -> None:
        one_of("budget.name", self.name, ("uniform", "loguniform", "fixed", "choice"))
        self.sampler()  # the distributions check their own ranges and shares, naming budget.<key>

    def distribution(self) -> BudgetDistribution:
        if self.name == "uniform":
            return UniformBudget(self.low, self.high)
        if self.name == "loguniform":
            return LogUniformBudget(self.low_exp, self.high_exp)
        if self.name == "fixed":
            return FixedBudget(self.value)
        return ChoiceBudget(tuple(self.values))

    def sampler(self) -> BudgetSampler:
        return BudgetSampler(self.distribution(), self.max_share, self.none_share)
