"""Crash-safe checkpoints: atomic writes, clear errors when one cannot be written or read, and ``ckpt_path=auto``.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction: the bytes go to a file in the system's
temporary folder, which is then moved into place, without fsync; where that folder is on another filesystem the
move is a copy, which a kill can cut short, leaving a ``last.ckpt`` that does not load. :class:`AtomicCheckpointIO`
writes ``<name>.partial`` next to the target, fsyncs it, renames it over the target (atomic on POSIX), then fsyncs
the folder: a checkpoint file is either the previous complete one or the new complete one, whenever the process
dies. A ``.partial`` file is what an interrupted save leaves; nothing reads it, and the next save of that name
replaces it.

``ckpt_path=auto`` resumes from the newest complete checkpoint of the run folder (``checkpoints/*.ckpt`` and
Lightning's SLURM ``hpc_ckpt_*.ckpt``), or starts fresh when there is none, so a requeued job restarts itself.

Lightning checkpoints a step before it hands that step's metrics to the loggers, so a process killed in between
(while ``last.ckpt`` is being written, say) leaves a checkpoint whose step has no metrics row, and the resumed run
starts after it. :class:`StepMetricsCarry` keeps the row in the checkpoint and logs it again when a run resumes:
each resumed run's metrics start with the step it resumed from.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.utilities import rank_zero_only

from lcpo.errors import LcpoError, describe

log = logging.getLogger(__name__)

#: The run folder's subfolder of periodic checkpoints (and ``last.ckpt``).
CHECKPOINT_DIR = "checkpoints"
#: ``ckpt_path`` value that resumes from the newest complete checkpoint of the run folder, if any.
AUTO = "auto"
#: Suffix of a checkpoint being written; renamed to the checkpoint's name once complete.
PARTIAL = ".partial"
#: ``ckpt_path`` values Lightning resolves itself.
LIGHTNING_KEYWORDS = ("last", "hpc")


class CheckpointError(LcpoError):
    """A checkpoint that cannot be written, or a ``ckpt_path`` that is not a complete checkpoint."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic, fsynced local writes and errors that name the file.

    Remote paths (``s3://``...) and ``storage_options`` go to Lightning's own implementation.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        save_atomic(checkpoint, Path(path))

    def load_checkpoint(self, path: Any, map_location: Optional[Callable] = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        if not _is_local_file_protocol(path):
            return super().load_checkpoint(path, map_location, weights_only)
        check_complete(Path(path))
        try:
            checkpoint = super().load_checkpoint(path, map_location, weights_only)
        except Exception as err:  # torch.load raises many unrelated types for a damaged file
            raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {describe(err)})") from err
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise CheckpointError(f"{path}: not a Lightning training checkpoint (it holds no 'state_dict')")
        return checkpoint


class StepMetricsCarry(L.Callback):
    """Keeps the latest step's logged metrics in each checkpoint, and logs them again when a run resumes from it.

    Lightning calls ``on_train_batch_end`` of checkpoint callbacks last, so the row kept is the one of the step the
    checkpoint holds. Rows carry the step the module logged (rollout steps), as the logger connector writes them.
    """

    def __init__(self) -> None:
        self.row: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # tensors as logged; turned into numbers only when a checkpoint is written
        metrics = dict(trainer.logged_metrics)
        step = metrics.pop("step", trainer.fit_loop.epoch_loop._batches_that_stepped)
        self.row = {"step": int(step), "metrics": metrics}

    @rank_zero_only
    def on_train_start(self, trainer, pl_module) -> None:
        if self.row is None:
            return
        for logger in trainer.loggers:
            logger.log_metrics(self.row["metrics"], step=self.row["step"])

    def state_dict(self) -> dict[str, Any]:
        if self.row is None:
            return {"row": None}
        return {"row": {**self.row, "metrics": {k: float(v) for k, v in self.row["metrics"].items()}}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.row = state_dict.get("row")


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` through ``<path>.partial``, fsync and rename; the previous file at ``path``
    stays complete until the new one replaces it. A failed write (a full disk, a folder that cannot be written)
    raises :class:`CheckpointError` naming ``path``."""
    partial = path.with_name(path.name + PARTIAL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as handle:
            _torch_save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        _fsync_folder(path.parent)
    except OSError as err:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        reason = f"{err.strerror or describe(err)} (checkpoints written before are intact)"
        raise CheckpointError(f"could not write checkpoint {path}: {reason}") from err


def check_complete(path: Path) -> None:
    """Raises :class:`CheckpointError` unless ``path`` is a complete checkpoint file: a zip archive (what
    ``torch.save`` writes) whose central directory, written last, is there. Reads only the archive's index."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.is_dir():
        return  # a sharded checkpoint (a folder): its strategy checks it when loading
    try:
        with zipfile.ZipFile(path) as archive:
            complete = any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path}: not a complete checkpoint (cut short, or not from torch.save): {err}") from err
    if not complete:
        raise CheckpointError(f"{path}: not a complete checkpoint (a zip archive without torch's data.pkl)")


def newest_complete(run_dir: Path) -> Path | None:
    """The most recently written complete checkpoint of a run folder: ``checkpoints/*.ckpt`` (periodic ones and
    ``last.ckpt``) and Lightning's SLURM ``hpc_ckpt_*.ckpt``; incomplete files are skipped with a warning."""
    candidates = [*run_dir.joinpath(CHECKPOINT_DIR).glob("*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            check_complete(path)
        except CheckpointError as err:
            log.warning("skipping %s", err)
            continue
        return path
    return None


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> str | None:
    """What ``trainer.fit`` gets for ``ckpt_path``: ``auto`` becomes the newest complete checkpoint of ``run_dir``
    (None, a fresh start, when it has none); a path must be a complete checkpoint; Lightning's keywords pass."""
    if ckpt_path is None or ckpt_path in LIGHTNING_KEYWORDS:
        return ckpt_path
    if ckpt_path == AUTO:
        found = newest_complete(run_dir)
        if found is None:
            log.info("ckpt_path=auto: no checkpoint in %s, starting from step 0", run_dir)
            return None
        log.info("ckpt_path=auto: resuming from %s", found)
        return str(found)
    path = Path(ckpt_path).expanduser()
    try:
        check_complete(path)
    except CheckpointError as err:
        raise CheckpointError(f"ckpt_path: {err}") from err
    return str(path)


class _KeepWriteError:
    """The open file as ``torch.save`` sees it, remembering the ``OSError`` of a failed write: torch's zip writer
    turns it into a ``RuntimeError`` ("unexpected pos") that no longer says the disk is full."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.error = handle, None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.handle.flush()


def _torch_save(obj: Any, handle: BinaryIO) -> None:
    sink = _KeepWriteError(handle)
    try:
        torch.save(obj, sink)
    except RuntimeError as err:
        if sink.error is None:
            raise
        raise sink.error from err


def _fsync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
