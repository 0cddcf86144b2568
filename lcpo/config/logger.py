"""The ``logger`` group: wandb (offline unless asked) and CSV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from lcpo.config.checks import one_of


@dataclass
class LoggerConfig:
    """wandb (offline unless ``wandb_mode=online``) and a CSV logger; ``group`` clusters the runs of a sweep in
    the wandb dashboard and ``name`` names one run (a sweep job defaults to its overrides)."""

    wandb: bool = True
    wandb_mode: str = "offline"
    project: str = "lcpo"
    group: Optional[str] = None
    name: Optional[str] = None
    csv: bool = True

    def __post_init__(self) -> None:
        one_of("logger.wandb_mode", self.wandb_mode, ("offline", "online", "disabled"))
