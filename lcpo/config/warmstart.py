"""``conf/warmstart.yaml``'s schema: the supervised warm-start of the tiny policy on generated traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from lcpo.config.budget import BudgetConfig
from lcpo.config.checks import in_range, positive
from lcpo.config.model import ModelConfig
from lcpo.config.prompt import PromptConfig
from lcpo.config.task import TaskConfig


@dataclass
class WarmstartConfig:
    """SFT hyper-parameters and how traces are drawn.

    ``min_verbosity``..``max_verbosity`` (uniform) is the number of check lines a trace scatters between its steps:
    thinking that adds nothing, whose spread sets the spread of lengths the warm-started model produces (the
    budgets taught by RL must overlap it). Early stops, which answer from the partial sum, come two ways:

    - ``stop_when_short`` (the recipe: 0.2) is the chance that a trace ends its thinking after a line whose
      countdown shows that the steps left no longer fit the budget (checked line by line). The warm-started model
      then knows roughly when it runs out of room, as a pretrained reasoning model does, but not when stopping
      pays: it stops as readily on a one-token overrun as on a fifty-token one, and only now and then, so its
      length follows the budget loosely. LCPO has to sharpen that into a policy. At 0.1 the tiny model did not
      pick the rule up at all (docs/measurements.md).
    - ``stop_when_short_max`` is that chance under a max-mode budget (None, the recipe: ``stop_when_short``'s). At
      0.5, with L1-Max trained from the base, max mode passed its bar on two seeds of three and failed it on the
      third (docs/measurements.md).
    - ``stop_share`` of the traces end at a uniformly drawn line before their last step, whatever the budget.
      Random stops alone were measured not to be enough: LCPO unlearned them everywhere (docs/measurements.md).

    The learning rate matters for the tiny model, and so does the length: after 1500 steps one of three seeds
    still misread terms under exact-budget prompts (accuracy 0.70 at budget 95 against 0.93 under max prompts);
    2000 steps fixed it (docs/measurements.md).
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    min_verbosity: int = 0
    max_verbosity: int = 6
    stop_share: float = 0.0
    stop_when_short: float = 0.2
    stop_when_short_max: Optional[float] = None
    seed: int = 0
    num_threads: Optional[int] = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "lr"):
            positive(f"warmstart.{key}", getattr(self, key))
        for key in ("warmup_steps", "weight_decay", "grad_clip"):
            positive(f"warmstart.{key}", getattr(self, key), allow_zero=True)
        in_range("warmstart.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if not 0 <= self.min_verbosity <= self.max_verbosity:
            raise ValueError(
                f"warmstart needs 0 <= min_verbosity <= max_verbosity, got {self.min_verbosity}, {self.max_verbosity}"
            )
        in_range("warmstart.stop_share", self.stop_share, 0.0, 1.0)
        in_range("warmstart.stop_when_short", self.stop_when_short, 0.0, 1.0)
        if self.stop_when_short_max is not None:
            in_range("warmstart.stop_when_short_max", self.stop_when_short_max, 0.0, 1.0)


@dataclass
class WarmstartRunConfig:
    """What ``python -m lcpo.warmstart`` composes: the same model/task/budget/prompt groups as training."""

    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    warmstart: WarmstartConfig = field(default_factory=WarmstartConfig)
    output_dir: str = "outputs/warmstart"
