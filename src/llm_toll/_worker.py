"""llm_toll's worker thread: the blocking work of async callers runs here, never on the
event loop."""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from llm_toll._warnings import warn_once
from llm_toll.exceptions import TelemetryWarning

if TYPE_CHECKING:  # imported by async callers, who have it already; sync code never needs it
    import asyncio

T = TypeVar("T")
EXIT_DRAIN_TIMEOUT_S = 10.0
MAX_DEFERRALS = 16
"""How many times a background job gives way to newer work before it runs anyway: a worker
that is never idle still writes it."""

_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any] | None", Any]


def _later_turn() -> None:
    """Never called: its job in the queue is the turn of the oldest background job."""


_LATER: _Job = (_later_turn, (), None, None)


class Worker:
    """One thread that runs the blocking work of async callers (store I/O, span ends).

    A single thread suits the work (store writes serialise on one connection anyway) and
    keeps its order; handing work over through a SimpleQueue and answering with
    ``call_soon_threadsafe`` costs about half of ``asyncio.to_thread``'s round trip. Work
    handed over always runs, even if the awaiting task is cancelled meanwhile, and is
    drained at interpreter exit, so no record is lost. Background work (``submit_later``:
    the rows of ended runs) waits while other work is queued, so that a caller awaiting its
    record never waits behind it.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # One entry per job handed over and not finished. Appends and pops are atomic, so
        # the event loop never waits on a lock the worker holds (which would cost it the
        # worker's whole GIL time slice).
        self._unfinished: deque[None] = deque()
        self._later: deque[_Job] = deque()
        self._deferrals = 0

    @property
    def backlog(self) -> int:
        return len(self._unfinished)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until work handed over so far has run (at once when there is none).

        Returns at once in the worker itself, which cannot wait for its own queue.
        """
        if not self._unfinished or threading.current_thread() is self._thread:
            return True
        return self.drain(timeout)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put((fn, args, future, loop))
        return await future

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` in the worker without waiting for it."""
        self._put((fn, args, None, None))

    def submit_later(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` in the worker when no other work waits (background jobs in the order
        they were handed over), or once it has given way ``MAX_DEFERRALS`` times."""
        self._later.append((fn, args, None, None))
        self._put(_LATER)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything handed over so far has run (background work too); False
        on timeout."""
        done = threading.Event()
        self.submit_later(done.set)
        return done.wait(timeout)

    def _put(self, job: _Job) -> None:
        self._unfinished.append(None)
        self._queue.put(job)
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="llm_toll-worker", daemon=True
                )
                self._thread.start()
                # Registered now rather than at import, so that it runs before the exit
                # handlers of providers the app set up in the meantime (atexit is LIFO):
                # the spans still queued end while their exporters can take them.
                atexit.register(self.drain, EXIT_DRAIN_TIMEOUT_S)

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is _LATER:
                # Other work waits when more jobs are unfinished than background ones.
                waiting = len(self._unfinished) > len(self._later)
                if waiting and self._deferrals < MAX_DEFERRALS:
                    self._deferrals += 1
                    self._queue.put(_LATER)  # its turn again after the work queued now
                    continue
                self._deferrals = 0
                job = self._later.popleft()
            fn, args, future, loop = job
            try:
                result = fn(*args)
            except BaseException as error:
                if future is not None:  # handed back to the awaiting caller
                    _answer(loop, future.set_exception, future, error)
                else:  # nobody waits for it: say so rather than lose it silently
                    warn_once(
                        f"worker:{type(error).__name__}",
                        f"llm_toll's worker thread failed: {error!r}",
                        TelemetryWarning,
                    )
            else:
                if future is not None:
                    _answer(loop, future.set_result, future, result)
            finally:
                self._unfinished.pop()

    def forget_after_fork(self) -> None:
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._unfinished = deque()
        self._later = deque()
        self._deferrals = 0


def _answer(
    loop: Any, setter: Callable[[Any], None], future: asyncio.Future[Any], value: Any
) -> None:
    def resolve() -> None:
        if not future.done():  # the awaiting task may have been cancelled
            setter(value)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(resolve)


worker = Worker()
"""The one worker of the process."""

os.register_at_fork(after_in_child=worker.forget_after_fork)
