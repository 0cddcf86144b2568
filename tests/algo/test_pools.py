"""Waiting on a grading worker's task: an answer when the pool settles it, an error when the pool stopped first."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from pebble import ProcessPool

from lcpo.algo.pools import settled


def test_a_settled_task_gives_its_result() -> None:
    pool = ProcessPool(max_workers=1)
    try:
        assert settled(pool, pool.schedule(sum, args=([1, 2, 3],))) == 6
    finally:
        pool.stop()
        pool.join()


def test_a_task_its_stopped_pool_left_behind_raises_instead_of_waiting_forever() -> None:
    pool = ProcessPool(max_workers=1)
    pool.stop()
    pool.join()
    raised: list[BaseException] = []

    def wait_on_it() -> None:
        try:
            settled(pool, Future())  # what a task queued as the pool broke is left as: never settled
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            raised.append(err)

    waiter = threading.Thread(target=wait_on_it, daemon=True)
    waiter.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive(), "settled() still waits on a task its stopped pool will never settle"
    assert len(raised) == 1 and isinstance(raised[0], BrokenProcessPool)
    assert "stopped without settling" in str(raised[0])
