"""Rows handed over on the call path and written by llm_toll's worker thread, together: the
first one starts a short wait (``FLUSH_DELAY_S``), and every one handed over meanwhile is
written with it in one transaction, or at once when ``BATCH_ROWS`` are waiting. A loop of a
thousand runs or refusals a second costs the store a few transactions a second, not one
each, and the calls' own writes never queue behind a long one. Each row goes to the store
that was in use when it was handed over, as a call's record does: a ``set_store()``
meanwhile does not move it. A read of runs or refusals in this process has what waits
written first (``store._runs.BEFORE_READS``), and so does the interpreter's exit. The
worker writes them as background work: never ahead of a record a caller awaits."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from llm_toll import _runtime
from llm_toll._warnings import warn_once
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import StoreError
from llm_toll.store._runs import BEFORE_READS

if TYPE_CHECKING:
    from llm_toll.store import BaseStore

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_KEPT = 10_000
"""Rows kept while the store refuses them, before new ones are dropped (warned once)."""
FLUSH_DELAY_S = 0.25
"""How long the first row of a batch waits for others before the batch is written."""
BATCH_ROWS = 500
"""Rows handed over that are written at once, without the rest of the wait: a burst is
written in short transactions (a call's own write waits on none for long), never dropped."""


class Batch(Generic[K, V]):
    """Values by key, waiting for one write; two values of a key are ``merge``d into one.
    Values a write refuses (``StoreError``, warned once) wait for the next flush.

    One daemon thread per batch keeps the time: started at the first value, it waits for
    values, lets them gather for ``FLUSH_DELAY_S``, then hands them to the worker. Handing a
    value over is a dict update and, for the first of a batch, a notify; the value that
    makes ``BATCH_ROWS`` hands the batch to the worker itself. No thread is started on the
    call path but the first.
    """

    _due: threading.Condition
    _waiting: dict[tuple[BaseStore, K], V]
    _fresh: int
    """Values handed over since the batch was last taken (not those kept after a refused
    write: they wait for the delay, not to hammer a store that refuses)."""
    _timekeeper: threading.Thread | None

    def __init__(
        self,
        write: Callable[[BaseStore, list[V]], None],
        merge: Callable[[V, V], V],
        action: str,
    ) -> None:
        self._write = write
        self._merge = merge
        self._action = action
        self._forget()
        os.register_at_fork(after_in_child=self._forget)
        BEFORE_READS.append(self.flush_now)
        atexit.register(self._flush)  # in the exiting thread: the worker may be done

    def add(self, key: K, value: V) -> None:
        """Hand ``value`` over: written by the worker within ``FLUSH_DELAY_S``, never here,
        to the store in use now."""
        store = _runtime.get_store()
        full = None
        with self._due:
            first = not self._waiting
            self._keep((store, key), value)
            self._fresh += 1
            if self._fresh >= BATCH_ROWS:
                full = self._take()
            elif self._timekeeper is None:
                timekeeper = threading.Thread(
                    target=self._keep_time, name=f"llm_toll-{self._action}", daemon=True
                )
                self._timekeeper = timekeeper
                timekeeper.start()
            elif first:
                self._due.notify()
        if full is not None:  # a burst: written now, in the worker, not held to the delay
            worker.submit_later(self._write_all, full)

    def flush_now(self) -> None:
        """Have the worker write what waits now, without the rest of the delay, and wait
        for it: a read made next in this process, through any store object, sees it."""
        worker.wait_idle()  # work handed over before (an async run's end) adds rows
        with self._due:
            if not self._waiting:
                return
        worker.submit(self._flush)
        worker.wait_idle()

    def _keep_time(self) -> None:
        due = self._due
        while True:
            with due:
                due.wait_for(lambda: bool(self._waiting))
            time.sleep(FLUSH_DELAY_S)  # the others of the batch arrive meanwhile
            worker.submit_later(self._flush)  # takes what waits when it runs

    def _keep(self, key: tuple[BaseStore, K], value: V) -> None:
        known = self._waiting.get(key)
        if known is not None:
            self._waiting[key] = self._merge(known, value)
        elif len(self._waiting) < MAX_KEPT:
            self._waiting[key] = value
        else:
            warn_once(
                f"batch-full:{self._action}",
                f"llm_toll could not {self._action}: {MAX_KEPT:,} rows the store refused "
                "are waiting in memory; newer ones are dropped until it takes them.",
                AccountingWarning,
            )

    def _take(self) -> dict[tuple[BaseStore, K], V]:
        """What waits, taken for a write (with the batch's lock held)."""
        waiting, self._waiting, self._fresh = self._waiting, {}, 0
        return waiting

    def _flush(self) -> None:
        with self._due:
            waiting = self._take()
        self._write_all(waiting)

    def _write_all(self, waiting: dict[tuple[BaseStore, K], V]) -> None:
        if not waiting:
            return
        by_store: dict[BaseStore, dict[tuple[BaseStore, K], V]] = {}
        for key, value in waiting.items():
            by_store.setdefault(key[0], {})[key] = value
        for store, values in by_store.items():
            self._write_to(store, values)

    def _write_to(self, store: BaseStore, waiting: dict[tuple[BaseStore, K], V]) -> None:
        try:
            self._write(store, list(waiting.values()))
        except StoreError as exc:
            with self._due:  # written with the next batch
                for key, value in waiting.items():
                    self._keep(key, value)
            warn_once(
                f"batch:{self._action}",
                f"llm_toll could not {self._action} ({exc}); they are kept in memory and "
                "written with the next ones.",
                AccountingWarning,
            )

    def _forget(self) -> None:
        """A new batch (in a forked child: the parent's thread is not there)."""
        self._due = threading.Condition()
        self._waiting = {}
        self._fresh = 0
        self._timekeeper = None
