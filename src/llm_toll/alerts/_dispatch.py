"""The alert thread: callbacks and webhooks run here, never on a caller's thread or an event
loop. Its queue is bounded: when it is full an alert is dropped (warned once), never
waited for. At exit, what is queued is delivered within EXIT_TIMEOUT_S.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from llm_toll._warnings import warn_once
from llm_toll.exceptions import TelemetryWarning

CAPACITY: Final = 1000
EXIT_TIMEOUT_S: Final = 5.0

Job = Callable[[], object]


class Dispatcher:
    """One daemon thread that runs alert jobs in order, from a bounded queue."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._jobs: deque[Job] = deque()
        self._changed = threading.Condition()
        self._busy = 0  # jobs taken from the queue and not finished
        self._closing = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._exit_registered = False

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False (and a warning, once) when the queue is full. Never blocks
        on the job's work: the lock is held only to append."""
        with self._changed:
            if len(self._jobs) >= self.capacity:
                full = True
            else:
                full = False
                self._jobs.append(job)
                self._changed.notify_all()
                self._start()
        if full:
            warn_once("alert-queue-full", f"llm_toll's alert queue is full ({self.capacity} "
                      "alerts wait for slow callbacks or webhooks): alerts are dropped until "
                      "it drains.", TelemetryWarning)  # fmt: skip
        return not full

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` between webhook attempts; False at once when the process is
        ending (its remaining work is bounded by the exit's flush)."""
        return not self._closing.wait(seconds)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job queued so far has run; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._jobs or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        with self._changed:
            return len(self._jobs) + self._busy

    def close(self) -> None:
        """End the thread once the jobs queued so far have run (a dispatcher of its own)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _start(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=self._serve, name="llm_toll-alerts", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # at interpreter exit, where no thread can start any more
            return
        self._thread = thread
        if not self._exit_registered:
            self._exit_registered = True
            atexit.register(self._at_exit)

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not self._jobs and not self._closed:
                    self._changed.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy += 1
            try:
                job()  # jobs report their own failures; see _fire
            except Exception as error:
                warn_once(f"alert-job:{type(error).__name__}", "llm_toll could not deliver "
                          f"an alert: {error!r}", TelemetryWarning)  # fmt: skip
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

    def _at_exit(self) -> None:
        """Deliver what is queued, within EXIT_TIMEOUT_S: first the worker's writes still
        waiting (async calls' records, whose crossings queue alerts), then the alerts."""
        from llm_toll._worker import worker

        deadline = time.monotonic() + EXIT_TIMEOUT_S
        worker.wait_idle(EXIT_TIMEOUT_S)
        self._closing.set()  # webhooks that fail are not tried again
        if not self.flush(max(0.0, deadline - time.monotonic())):
            print(f"llm_toll: {self.pending} alert(s) were not delivered before exit.",
                  file=sys.stderr)  # fmt: skip

    def forget_after_fork(self) -> None:
        """A forked child has no alert thread and none of its parent's queued alerts."""
        self._jobs = deque()
        self._changed = threading.Condition()
        self._busy = 0
        self._closing = threading.Event()
        self._thread = None


dispatcher = Dispatcher()
"""The process's one alert thread."""

os.register_at_fork(after_in_child=dispatcher.forget_after_fork)
