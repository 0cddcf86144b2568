"""``python -m lcpo.train`` for the kill -9 and signal tests, reporting the moments a test wants to kill it at.

Every ``torch.save`` of the run prints ``SAVED <n>`` once its bytes are written. With ``LCPO_TEST_HANG_AT_SAVE=<n>``
the n-th one writes half its bytes, flushes them, prints ``HANGING SAVE <n>`` and waits to be killed; with
``LCPO_TEST_HANG_AT_ROLLOUT=<s>`` the rollout of step ``s`` (0-based) prints ``HANGING ROLLOUT <s>`` and waits. The
test then kills the process at a moment it knows (in the middle of a checkpoint's write, in the middle of a
step) rather than by timing. With ``LCPO_TEST_WAIT_AT_ROLLOUT=<s>`` (and ``LCPO_TEST_WAIT_RANK=<r>``, 0 unless set) the
rollout of step ``s`` on rank ``r`` prints ``WAITING ROLLOUT <s> PID <pid>`` and waits for a stop signal (the run's
handler of SIGTERM changes when one comes), then goes on: the signal arrives in the middle of that step.
"""

import io
import os
import signal
import time

import torch

from lcpo.training.collector import RolloutCollector
from lcpo.cli.train import main

_real_save = torch.save
_real_collect = RolloutCollector.collect
_saves = 0


def _hang(what: str) -> None:
    print(f"HANGING {what}", flush=True)
    time.sleep(3600)


def _observed_save(obj, f, *args, **kwargs):
    global _saves
    _saves += 1
    buffer = io.BytesIO()
    _real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    if _saves == int(os.environ.get("LCPO_TEST_HANG_AT_SAVE", "0")):
        f.write(data[: len(data) // 2])
        f.flush()
        _hang(f"SAVE {_saves}")
    f.write(data)
    print(f"SAVED {_saves}", flush=True)


def _wait_for_signal(step: int) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    print(f"WAITING ROLLOUT {step} PID {os.getpid()}", flush=True)
    deadline = time.monotonic() + 300
    while signal.getsignal(signal.SIGTERM) == handler and time.monotonic() < deadline:
        time.sleep(0.01)


def _observed_collect(self, batch, rank=0):
    if str(batch.step) == os.environ.get("LCPO_TEST_HANG_AT_ROLLOUT"):
        _hang(f"ROLLOUT {batch.step}")
    if str(batch.step) == os.environ.get("LCPO_TEST_WAIT_AT_ROLLOUT") and str(rank) == os.environ.get(
            "LCPO_TEST_WAIT_RANK", "0"):
        _wait_for_signal(batch.step)
    return _real_collect(self, batch, rank)


def install() -> None:
    """Reports (and hangs) checkpoint writes and rollouts as the environment asks."""
    torch.save = _observed_save
    RolloutCollector.collect = _observed_collect


if __name__ == "__main__":
    install()
    main()
