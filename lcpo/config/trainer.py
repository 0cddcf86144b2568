"""The ``trainer`` group: the Lightning Trainer, and how often a run checkpoints, exports, samples and validates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from lcpo.config.checks import positive


@dataclass
class TrainerConfig:
    """Lightning Trainer settings. ``max_steps`` and every ``*_every_n_steps`` count rollout steps (0 turns the
    periodic action off); ``val_every_n_steps`` runs the small budget-grid validation of ``val``."""

    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_steps: int = 100
    log_every_n_steps: int = 1
    ckpt_every_n_steps: int = 50
    export_every_n_steps: int = 0
    samples_every_n_steps: int = 10
    samples_per_table: int = 8
    val_every_n_steps: int = 0
    num_threads: Optional[int] = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        positive("trainer.max_steps", self.max_steps)
        positive("trainer.num_nodes", self.num_nodes)
        for key in ("log_every_n_steps", "ckpt_every_n_steps", "export_every_n_steps", "samples_every_n_steps",
                    "samples_per_table", "val_every_n_steps"):
            positive(f"trainer.{key}", getattr(self, key), allow_zero=True)
        if self.num_threads is not None:
            positive("trainer.num_threads", self.num_threads)
