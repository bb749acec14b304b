"""The worker thread's order: work handed over runs in order, background work (the rows of
ended runs) after whatever else waits, and a drain waits for both."""

from __future__ import annotations

import threading

from llm_toll._worker import MAX_DEFERRALS, Worker


def _blocked(worker: Worker) -> threading.Event:
    """Hold ``worker`` in a job until the returned event is set."""
    gate = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        gate.wait()

    worker.submit(hold)
    started.wait()
    return gate


def test_background_work_waits_for_the_work_queued_meanwhile() -> None:
    worker = Worker()
    ran: list[str] = []
    gate = _blocked(worker)
    try:
        worker.submit_later(ran.append, "run rows")
        worker.submit(ran.append, "a record")
        worker.submit(ran.append, "another record")
        worker.submit_later(ran.append, "more run rows")
    finally:
        gate.set()
    assert worker.drain(timeout=60)
    assert ran == ["a record", "another record", "run rows", "more run rows"]


def test_background_work_runs_while_other_work_keeps_coming() -> None:
    """A worker never idle still runs background work, after MAX_DEFERRALS turns."""
    worker = Worker()
    ran: list[str] = []
    done = threading.Event()

    def keep_busy(left: int) -> None:
        ran.append("record")
        if left:
            worker.submit(keep_busy, left - 1)  # there is always other work queued
        else:
            done.set()

    gate = _blocked(worker)
    try:
        worker.submit_later(ran.append, "run rows")
        worker.submit(keep_busy, 10 * MAX_DEFERRALS)
    finally:
        gate.set()
    assert done.wait(timeout=60)
    assert worker.drain(timeout=60)
    assert ran.index("run rows") == MAX_DEFERRALS
    assert ran.count("record") == 10 * MAX_DEFERRALS + 1


def test_a_drain_waits_for_background_work() -> None:
    worker = Worker()
    ran: list[str] = []
    gate = _blocked(worker)
    try:
        worker.submit_later(ran.append, "run rows")
    finally:
        gate.set()
    assert worker.wait_idle(timeout=60)
    assert ran == ["run rows"]
    assert worker.backlog == 0
