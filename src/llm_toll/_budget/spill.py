"""Where the records a store refused wait until it takes writes again: the store's spill
journal (``journal.py``), else this process's memory; and how long the writer leaves a
store that refuses before it tries again."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from llm_toll._budget.journal import SpillJournal
from llm_toll._budget.records import PendingWrite
from llm_toll._warnings import warn_once
from llm_toll.alerts._options import AlertOptions
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import BaseStore, StoreError

# Records kept in memory (a store without a journal, or a journal that cannot be written),
# before the oldest are dropped.
MAX_SPOOLED = 1_000_000
# The longest pause between tries of a store that refused the records kept for it.
MAX_RETRY_PAUSE_S = 5.0


@dataclass(slots=True)
class Spill:
    """Where the records a store refuses wait, and whether any may be waiting."""

    journal: SpillJournal | None
    pending: bool
    """The journal may hold records."""
    memory: deque[tuple[PendingWrite, AlertOptions | None]] = field(default_factory=deque)
    """Records neither the store nor the journal took, with where their alerts go."""
    owner: BaseStore | None = None
    """The store itself while ``memory`` holds its records: kept alive until they are in."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by the one thread catching up."""
    refusals: int = 0
    """Catch-ups the store refused in a row."""
    retry_at: float = 0.0
    """``time.monotonic()`` before which records go to the journal without trying the store:
    a store that refuses (locked, down) is not waited on by every call."""

    def keep(
        self,
        store: BaseStore,
        write: PendingWrite,
        error: StoreError | None,
        *,
        alerts: AlertOptions | None,
    ) -> str | None:
        """Keep a record the store refused, with where the alerts its write will cross go:
        in the store's journal (its record id returned), else in memory (None)."""
        cause = "" if error is None else f" ({error})"
        journal = self.journal
        if journal is not None:
            try:
                [record_id] = journal.append([write], [webhook_of(alerts)])
            except OSError as journal_error:
                warn_once(
                    f"journal-unwritable:{journal.path}",
                    f"llm_toll could not record a call{cause}, nor keep it in the spill "
                    f"journal {journal.path} ({journal_error}): it is kept in memory only, and "
                    "lost if the process ends before the store takes writes again.",
                    AccountingWarning,
                )
            else:
                self.pending = True
                warn_once(
                    f"spilled:{journal.path}",
                    f"llm_toll could not record a call in {journal.location}{cause}; it is "
                    f"kept in the spill journal {journal.path} and will be written to the "
                    "store as soon as it takes writes again, by this process or the next one "
                    "that uses this store.",
                    AccountingWarning,
                )
                return record_id
        else:
            cause_name = "store" if error is None else type(error.__cause__).__name__
            warn_once(
                f"store-write:{cause_name}",
                f"llm_toll could not record a call{cause}; it is kept in memory and will be "
                "written when the store is writable again.",
                AccountingWarning,
            )
        self.keep_in_memory(store, write, alerts)
        return None

    @property
    def waiting(self) -> bool:
        return self.pending or bool(self.memory)

    def keep_in_memory(
        self, store: BaseStore, write: PendingWrite, alerts: AlertOptions | None
    ) -> None:
        if len(self.memory) >= MAX_SPOOLED:
            self.memory.popleft()
            warn_once("spool-full", "llm_toll's in-memory spool is full: the oldest "
                      "unwritten record was dropped.", AccountingWarning)  # fmt: skip
        self.memory.append((write, alerts))
        self.owner = store

    def refused(self) -> bool:
        """Back off, up to 5 s, before the next try; False (for the caller to return)."""
        self.refusals += 1
        self.retry_at = time.monotonic() + min(0.1 * 2**self.refusals, MAX_RETRY_PAUSE_S)
        return False


def webhook_of(alerts: AlertOptions | None) -> str | None:
    """The webhook a spilled record's decorator or run named, kept with it in the journal
    (``LLM_TOLL_ALERT_WEBHOOK`` is read by whoever replays it)."""
    return None if alerts is None else alerts.webhook


class SpilledAlerts:
    """The alert options of this process's records in spill journals, by record id: the
    callbacks cannot go to disk, so only this process can call them when it replays its
    records. Bounded: past ``MAX_SPOOLED`` records the oldest are forgotten (their
    webhooks are in the journal)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, AlertOptions] = {}

    def keep(self, record_id: str, alerts: AlertOptions | None) -> None:
        if alerts is None:
            return
        with self._lock:
            if len(self._by_id) >= MAX_SPOOLED:
                del self._by_id[next(iter(self._by_id))]
            self._by_id[record_id] = alerts

    def pop(self, record_id: str) -> AlertOptions | None:
        with self._lock:
            return self._by_id.pop(record_id, None)
