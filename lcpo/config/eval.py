"""The evaluation grid (``eval`` in training, ``grid`` in ``lcpo.cli.evaluate``) and the small validation grid that
training runs periodically (``val``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from lcpo.algo.budgets import Mode
from lcpo.config.checks import in_range

#: The mode of s1 budget-forcing rows: forced to the budget rather than asked for it in the prompt.
FORCED = "forced"
#: The modes a grid can ask for, by their values (the config keeps plain strings, as YAML writes them).
BUDGETED = [Mode.EXACT.value, Mode.MAX.value]


@dataclass
class EvalGrid:
    """What is measured: budgets x modes, samples per problem, generation caps, problem count and seed.

    ``problems`` is passed to ``Task.eval_set`` (None: the task's whole evaluation set); ``pass_k`` defaults to
    ``samples``. Used as is from Python and as the ``grid`` node of ``conf/evaluate.yaml``.
    """

    budgets: list[int] = field(default_factory=lambda: [512, 1024, 2048, 3600])
    modes: list[str] = field(default_factory=lambda: list(BUDGETED))
    samples: int = 16
    exact_factor: float = 2.0
    max_mode_cap: int = 8192
    problems: Optional[int] = None
    pass_k: Optional[int] = None
    seed: int = 0
    #: The budget sentence in the s1 baseline's prompts: "none" (the reference: a base model never taught budget
    #: sentences) or "exact"/"max" (a base model warm-started on budgeted prompts, like the demo's tiny one, knows
    #: no prompt without one). Its length is forced either way.
    forced_prompt: str = Mode.NONE.value

    def __post_init__(self) -> None:
        if not self.budgets or min(self.budgets) < 1:
            raise ValueError(f"grid.budgets must be a non-empty list of positive budgets, got {self.budgets}")
        if not self.modes or not set(self.modes) <= set(BUDGETED):
            raise ValueError(f"grid.modes must be a non-empty subset of {BUDGETED}, got {self.modes}")
        if self.samples < 1 or self.exact_factor <= 0 or self.max_mode_cap < 1:
            raise ValueError("grid.samples, grid.exact_factor and grid.max_mode_cap must be positive")
        if self.forced_prompt not in [m.value for m in Mode]:
            raise ValueError(f"grid.forced_prompt must be one of {[m.value for m in Mode]}, got {self.forced_prompt!r}")
        if not 1 <= self.k <= self.samples:
            raise ValueError(f"grid.pass_k must lie in [1, grid.samples={self.samples}], got {self.pass_k}")

    @property
    def k(self) -> int:
        return self.samples if self.pass_k is None else self.pass_k

    def cap(self, mode: Mode | str, budget: int) -> int:
        """Max new tokens for one cell: ``exact_factor * N`` (exact), ``max_mode_cap`` (max), N (forced)."""
        if mode == Mode.EXACT:
            return max(1, int(self.exact_factor * budget))
        return self.max_mode_cap if mode == Mode.MAX else budget


#: The run-folder subfolder where the periodic validation writes ``step_<k>/report.json`` (training-time views on a
#: small grid, which sweep reports leave out: they compare runs by their end-of-run evaluation).
VALIDATION_DIR = "val"


@dataclass
class ValidationConfig:
    """The small budget grid a training run evaluates every ``trainer.val_every_n_steps`` rollout steps.

    ``budgets`` empty: four budgets spread over the training budget range (the midpoints of its quarters).
    ``temperature`` 0 decodes greedily (one sample is enough); above 0 samples ``samples`` per problem. Generation
    caps follow the evaluation protocol (``eval.exact_factor`` x N in exact mode, ``eval.max_mode_cap`` in max).
    """

    budgets: list[int] = field(default_factory=list)
    modes: list[str] = field(default_factory=lambda: list(BUDGETED))
    problems: int = 16
    samples: int = 1
    temperature: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        if any(b < 1 for b in self.budgets):
            raise ValueError(f"val.budgets must be budgets >= 1, got {self.budgets}")
        if not self.modes or not set(self.modes) <= set(BUDGETED):
            raise ValueError(f"val.modes must be a non-empty subset of {BUDGETED}, got {self.modes}")
        if self.problems < 1 or self.samples < 1:
            raise ValueError(f"val.problems and val.samples must be >= 1, got {self.problems}, {self.samples}")
        in_range("val.temperature", self.temperature, 0.0, 10.0)

    def grid(self, budgets: list[int], eval_grid: EvalGrid) -> EvalGrid:
        """The :class:`EvalGrid` to run: ``budgets`` (this config's, or the caller's default), eval's caps."""
        return EvalGrid(
            budgets=list(self.budgets or budgets), modes=list(self.modes), samples=self.samples,
            exact_factor=eval_grid.exact_factor, max_mode_cap=eval_grid.max_mode_cap, problems=self.problems,
            seed=self.seed,
        )
