"""The grader's worker processes: one pool per size, started once from a clean forkserver and kept for the life of
the process, started anew in a forked child, and stopped at exit so that nothing waits on them.

Kept apart from :mod:`lcpo.algo.grading` because process lifetimes (forks, forkservers, exit hooks) are a concern of
their own; grading only asks for a pool.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util
import os
import threading
from concurrent.futures import Future, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from pebble import ProcessPool

T = TypeVar("T")
#: How often a wait on a task checks that its pool still runs.
_POLL_S = 0.5

_POOLS: dict[int, ProcessPool] = {}
_POOL_LOCK = threading.Lock()
#: How pool workers start: from a forkserver (clean and quick) unless this process was itself forked from one
#: that may own the forkserver, which only its starter can manage; then by spawning.
_START_METHOD = ["forkserver"]
_FINALIZER_PID = [0]


def worker_pool(workers: int, preload: str) -> ProcessPool:
    """A process pool of ``workers`` graders, started once per size and kept for the life of the process.

    Workers fork from a forkserver that has imported only the module ``preload`` (the grader's, with its
    math-verify): never from the trainer itself, whose threads (and CUDA context) a forked child must not inherit.
    """
    with _POOL_LOCK:
        pool = _POOLS.get(workers)
        if pool is None or not pool.active:
            context = multiprocessing.get_context(_START_METHOD[0])
            if _START_METHOD[0] == "forkserver":
                context.set_forkserver_preload([preload])
            pool = _POOLS[workers] = ProcessPool(max_workers=workers, context=context)
            if _FINALIZER_PID[0] != os.getpid():  # multiprocessing children exit without running atexit hooks
                multiprocessing.util.Finalize(None, _close_pools, exitpriority=0)
                _FINALIZER_PID[0] = os.getpid()
        return pool


def settled(pool: ProcessPool, future: Future[T]) -> T:
    """``future.result()``, or ``BrokenProcessPool`` once ``pool`` has stopped and left the task unsettled.

    When every worker dies as it starts (an unguarded script run again in each one), pebble marks the pool broken
    and fails the tasks it knows of; a task queued while that happens can be left behind with its pool's threads
    gone, and a bare ``future.result()`` would then wait forever.
    """
    while not wait([future], timeout=_POLL_S).done:
        if not pool.active and not future.done():
            raise BrokenProcessPool("the worker pool stopped without settling this task")
    return future.result()


def _forget_pools_after_fork() -> None:
    # A forked child (e.g. a DataLoader worker) inherits the pool objects but not their manager threads: it must
    # start pools of its own rather than queue work no thread will ever send, and cannot use its parent's
    # forkserver.
    _POOLS.clear()
    _START_METHOD[0] = "spawn"


os.register_at_fork(after_in_child=_forget_pools_after_fork)


@atexit.register
def _close_pools() -> None:
    """Stops this process's pools, so that neither the interpreter nor a multiprocessing parent waits on them."""
    for pool in _POOLS.values():
        pool.stop()
        pool.join(timeout=5)
    _POOLS.clear()
