"""The ``trainer`` group: the Lightning Trainer, and how often a run checkpoints, exports, samples and validates."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any, Optional

from lcpo.config.checks import in_range, one_of, positive

#: Signals ``trainer.stop_signals`` may name: those a process can catch.
CATCHABLE_SIGNALS = sorted(s.name for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP))


@dataclass
class TrainerConfig:
    """Lightning Trainer settings. ``max_steps`` and every ``*_every_n_steps`` count rollout steps (0 turns the
    periodic action off); ``val_every_n_steps`` runs the small budget-grid validation of ``val``. A warning says
    when more than ``warn_zero_signal`` of the groups had equal rewards (no learning signal) for
    ``warn_zero_signal_steps`` rollout steps in a row (``lcpo.training.guards.LearningSignalWatch``).

    ``precision`` is Lightning's; left null it follows ``model.dtype`` (``32-true`` for float32, ``bf16-mixed`` for
    bfloat16: fp32 parameters, bf16 autocast), and set by hand it must agree with it.

    The first of ``stop_signals`` the run gets ends it after the rollout step in progress, with a checkpoint and
    exit status 128 + the signal's number; a second one ends it at once (``lcpo.training.preemption``). Signals not
    listed keep Lightning's handling."""

    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Optional[str] = None
    max_steps: int = 100
    log_every_n_steps: int = 1
    ckpt_every_n_steps: int = 50
    export_every_n_steps: int = 0
    samples_every_n_steps: int = 10
    samples_per_table: int = 8
    val_every_n_steps: int = 0
    num_threads: Optional[int] = None
    progress_bar: bool = True
    warn_zero_signal: float = 0.9
    warn_zero_signal_steps: int = 5
    stop_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGINT", "SIGUSR1"])
    #: the libraries' console messages (device reports, tips, deprecation warnings, shard bars): off by default
    verbose: bool = False

    def __post_init__(self) -> None:
        if str(self.precision) in ("16-mixed", "16"):
            raise ValueError(
                f"trainer.precision={self.precision}: fp16 loss scaling is not supported (the update clips and checks "
                "gradients before they would be unscaled); use bf16-mixed or 32-true"
            )
        in_range("trainer.warn_zero_signal", self.warn_zero_signal, 0.0, 1.0)
        positive("trainer.warn_zero_signal_steps", self.warn_zero_signal_steps)
        positive("trainer.max_steps", self.max_steps)
        positive("trainer.num_nodes", self.num_nodes)
        for key in ("log_every_n_steps", "ckpt_every_n_steps", "export_every_n_steps", "samples_every_n_steps",
                    "samples_per_table", "val_every_n_steps"):
            positive(f"trainer.{key}", getattr(self, key), allow_zero=True)
        if self.num_threads is not None:
            positive("trainer.num_threads", self.num_threads)
        for name in self.stop_signals:
            one_of("trainer.stop_signals", name, CATCHABLE_SIGNALS)
