"""Blocking telemetry work that a caller can stop waiting for at a deadline.

The OpenTelemetry SDK's flushes and shutdowns do not keep their timeouts (a flush waits
for every export, an exporter retries for its own full timeout), and nothing can interrupt
a thread blocked on a socket. So llm_toll hands such work to a thread of its own and
waits for it until a deadline; past it, the work is abandoned to a daemon thread that dies
with the process.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from collections.abc import Callable

Clock = Callable[[], float]

_runners: weakref.WeakSet[Runner] = weakref.WeakSet()


class Runner:
    """A daemon thread that runs the jobs handed to it, one at a time.

    Started when created, not when first used: Python 3.12 and later cannot start a thread
    in an atexit handler, which is where most of its work is handed over.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], threading.Event] | None]
        self._start()
        _runners.add(self)

    def _start(self) -> None:
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], object]) -> threading.Event:
        """Run ``job`` after the jobs handed over before it; the event is set when it ends.

        ``job`` must not raise: a failure in it is the job's to report.
        """
        done = threading.Event()
        self._jobs.put((job, done))
        return done

    def close(self) -> None:
        """End the thread once the jobs handed over so far have run."""
        _runners.discard(self)
        self._jobs.put(None)

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done = item
            try:
                job()
            finally:
                done.set()


def wait_until(done: threading.Event, deadline: float, clock: Clock = time.monotonic) -> bool:
    """Wait for ``done`` until ``clock()`` reaches ``deadline``; whether it was set."""
    while not done.is_set():
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        done.wait(remaining)
    return True


def _restart_runners_in_child() -> None:
    # A forked child has none of its parent's threads: give each runner a thread again, as
    # the SDK does for its batch processors, so that the child's exit is bounded too.
    for runner in list(_runners):
        runner._start()


os.register_at_fork(after_in_child=_restart_runners_in_child)
