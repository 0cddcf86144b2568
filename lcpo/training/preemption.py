"""Stopping on a signal without losing work: SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 end a run at the next rollout-step
boundary with a complete checkpoint, and a second signal ends it at once.

Clusters end jobs with a signal and kill them a little later (SLURM, Kubernetes and spot instances send SIGTERM;
SLURM can send SIGUSR1 ahead of its time limit); a person presses Ctrl-C. On the first signal of
``trainer.stop_signals`` the rollout step in progress runs to its end (its last optimiser step included: stopping
between the optimiser steps of one rollout batch could not resume exactly), every rank agrees to stop there (one
all-reduce of the stop flag per rollout step, so one rank receiving the signal is enough and no rank waits on a
collective the others never start), the run writes ``checkpoints/last.ckpt`` (atomically, as every checkpoint),
logs that step's metrics, prints the command that resumes it and exits with status 128 + the signal's number (143
for SIGTERM, 130 for SIGINT, 138 for SIGUSR1, as a shell reports a process the signal ended). The first signal hands
the stop signals back to the operating system's default action, so a second one ends the process at once, even
inside a long C call; checkpoints are atomic, so that loses only the steps since the last one.

Lightning's own handlers (``_SignalConnector``: SIGTERM stops the loop at the next batch without a checkpoint and
exits with status 0, after a broadcast from inside the handler that a signal to a rank other than 0 turns into a
mismatched collective; SIGUSR1 under SLURM saves ``hpc_ckpt_<k>.ckpt`` in the middle of a step and requeues) are
installed when ``fit`` starts; :class:`StopOnSignal` replaces them for the stop signals at ``on_train_start`` and
Lightning's teardown puts back the handlers from before ``fit``. Under SLURM with requeueing on (Lightning's
``SLURMEnvironment(auto_requeue=True)``, its default there), the requeue signal (SIGUSR1) also requeues the job as
Lightning does (``scontrol requeue``), once the checkpoint is written; SIGTERM from then on is ignored, since
SLURM sends it to the job it requeues.

Only global rank 0 exits with the interrupted status; the other ranks exit with 0 once the checkpoint is written:
Lightning's launcher (and torchrun) take a child's non-zero status for a crash and kill rank 0, which may still be
closing its loggers.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Sequence

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lcpo.training.checkpoints import CHECKPOINT_DIR

def interrupted_status(signum: int) -> int:
    """The exit status of a run a signal stopped: 128 + its number, as a shell reports a process the signal ended."""
    return 128 + signum


class Interrupted(SIGTERMException):
    """Raised on every rank at the rollout step after the one a signal stopped; Lightning's loops and callbacks
    (``on_exception``) know its base class as the end of a run by a signal. Its code is the process's exit status."""

    def __init__(self, signum: int, code: int):
        super().__init__(code)
        self.signum = signum


class StopRequest:
    """The signal handler: remembers the first stop signal and gives all of them back to the default action, so the
    next one ends the process at once."""

    def __init__(self, signals: Sequence[str]):
        self.signals = [signal.Signals[name] for name in signals]
        self.signum = 0

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python runs signal handlers in the main thread only, and only it may set them
        for signum in self.signals:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for other in self.signals:
            signal.signal(other, signal.SIG_DFL)
        # os.write: a print from a handler could re-enter a write the main thread was in the middle of
        name = signal.Signals(signum).name
        os.write(2, f"\n{name}: finishing this rollout step, then checkpointing and stopping "
                    f"(send it again to stop at once)\n".encode())


class StopOnSignal(Checkpoint):
    """Stops the run at a rollout-step boundary after one of ``signals`` (see the module docstring).

    A :class:`~lightning.pytorch.callbacks.Checkpoint` so that Lightning runs its ``on_train_batch_end`` after
    every other callback's: the periodic checkpoint, the samples file and :class:`StepMetricsCarry`'s row of the step
    are written before the stop checkpoint is.
    """

    def __init__(self, signals: Sequence[str], run_dir: Path):
        self.request = StopRequest(signals)
        self.run_dir = Path(run_dir)
        self.last_path = self.run_dir / CHECKPOINT_DIR / "last.ckpt"
        self.signum = 0  # the stop signal every rank agreed on; 0 while running
        self.step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.request.signals:
            self.request.install()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.request.signals:
            return
        self.signum = agreed_signal(trainer, self.request.signum)
        if self.signum:
            self.step = pl_module.rollout_step
            periodic = trainer.checkpoint_callback
            if isinstance(periodic, ModelCheckpoint) and periodic.dirpath:
                self.last_path = Path(periodic.dirpath) / f"{periodic.CHECKPOINT_NAME_LAST}{periodic.FILE_EXTENSION}"
                # its own last checkpoint, or the resumed run would take the file for another's and write last-v1
                periodic.last_model_path = str(self.last_path)
            trainer.save_checkpoint(self.last_path)  # every rank: a sharded policy is gathered first

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._stop(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop(trainer)  # the signal came during the last step: training is done, what follows it is not

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, Interrupted) or not trainer.is_global_zero:
            return
        name = signal.Signals(exception.signum).name
        print(f"lcpo-train: stopped by {name} after rollout step {self.step}, checkpoint {self.last_path}; "
              f"resume with:\n  {resume_command(self.run_dir)}", file=sys.stderr, flush=True)
        environment = trainer._accelerator_connector.cluster_environment  # the one Lightning's handlers consult
        if (isinstance(environment, SLURMEnvironment) and environment.auto_requeue
                and exception.signum == environment.requeue_signal):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # SLURM sends it to the job it requeues
            requeue_slurm_job()

    def _stop(self, trainer: L.Trainer) -> None:
        if self.signum:
            raise Interrupted(self.signum, interrupted_status(self.signum) if trainer.is_global_zero else 0)


def agreed_signal(trainer: L.Trainer, signum: int) -> int:
    """The stop signal of any rank (the largest number if ranks got different ones); 0 when none got one. A
    collective: every rank calls it at the end of every rollout step."""
    flag = torch.tensor(float(signum), device=trainer.strategy.root_device)
    return int(trainer.strategy.reduce(flag, reduce_op="max").item())


def resume_command(run_dir: Path) -> str:
    """``python -m lcpo.train`` with this run's command-line overrides, ``ckpt_path=auto`` and the run folder."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in overrides if not o.lstrip("+~").startswith(("ckpt_path=", "output_dir="))]
    folder = str(Path(run_dir).resolve())
    args = [*kept, "ckpt_path=auto", f"output_dir={folder}", f"hydra.run.dir={folder}"]
    return " ".join(["python", "-m", "lcpo.train", *map(shlex.quote, args)])


def requeue_slurm_job() -> int:
    """Requeues this SLURM job (an array job's own task) with ``scontrol requeue``, as Lightning's SLURM support
    does; returns scontrol's exit status."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]
    if not re.fullmatch(r"[0-9_]+", job_id):
        raise ValueError(f"SLURM job id {job_id!r} is not a job id")
    try:
        status = subprocess.call(["scontrol", "requeue", job_id])
    except FileNotFoundError:
        status = 127
    message = f"requeued SLURM job {job_id}" if status == 0 else f"could not requeue SLURM job {job_id} ({status})"
    print(f"lcpo-train: {message}", file=sys.stderr, flush=True)
    return status
