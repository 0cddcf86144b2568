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

#: ``budget.name`` that takes each problem's budget from its file row instead of drawing one.
FROM_FILE = "from_file"


@dataclass
class BudgetConfig:
    """Budget distribution (``name``) and the mode mixture: ``max_share`` max prompts, ``none_share`` unbudgeted.

    ``from_file``: every problem keeps the budget of its file row (the reference's ``reward_model.num_tokens``:
    exact, max or none, as it trained); ``low``/``high`` state the range those budgets lie in (checked when the file
    loads), which the per-quarter metrics, validation budgets and generation-cap check use; shares are not drawn.
    """

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
        one_of("budget.name", self.name, ("uniform", "loguniform", "fixed", "choice", FROM_FILE))
        if self.from_file and (self.max_share or self.none_share):
            raise ValueError("budget=from_file takes each row's own mode; budget.max_share/none_share must stay 0")
        self.sampler()  # the distributions check their own ranges and shares, naming budget.<key>

    @property
    def from_file(self) -> bool:
        return self.name == FROM_FILE

    def distribution(self) -> BudgetDistribution:
        if self.name in ("uniform", FROM_FILE):
            return UniformBudget(self.low, self.high)
        if self.name == "loguniform":
            return LogUniformBudget(self.low_exp, self.high_exp)
        if self.name == "fixed":
            return FixedBudget(self.value)
        return ChoiceBudget(tuple(self.values))

    def sampler(self) -> BudgetSampler:
        return BudgetSampler(self.distribution(), self.max_share, self.none_share)
