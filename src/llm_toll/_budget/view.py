"""This process's latest knowledge of budget totals, for the pre-call check."""

from __future__ import annotations

import itertools
import time

# A budget total this process read or wrote less than this long ago may answer a pre-call
# check without another trip to the store.
VIEW_MAX_AGE_S = 1.0
# Totals kept in the view beyond which those too old to be used are dropped (budget keys
# can be many: one per tenant).
VIEW_MAX_ENTRIES = 10_000

ScopeKey = tuple[str, str, str]
"""(project, budget key or '' for the project itself, period)."""


class BudgetView:
    """Every store write returns the store's new total, which includes what other threads and
    processes spent, so a total learned at the end of the previous call is as good as a
    read at the start of this one, up to concurrent spend that a read could race with
    anyway. Totals older than VIEW_MAX_AGE_S are not used.

    Async calls hand their store write to the worker thread and return at once; until the
    write lands, their cost is *held* here, so the next call's check already counts it.

    No lock: the event loop and the worker thread touch it on every call, and a lock they
    both take makes one wait out the other's GIL time slice. Each change is a single dict
    store or pop, which CPython performs atomically.
    """

    def __init__(self) -> None:
        # scope -> (total, when it was learned)
        self._totals: dict[ScopeKey, tuple[int, float]] = {}
        # ticket -> (the scopes a held cost counts for, the cost)
        self._held: dict[int, tuple[tuple[ScopeKey, ...], int]] = {}
        self._tickets = itertools.count()
        self._prune_at = VIEW_MAX_ENTRIES

    def remember(self, project: str, period: str, spent_nanos: int, key: str = "") -> None:
        """A total just read from or written to the store."""
        now = time.monotonic()
        self._totals[(project, key, period)] = (spent_nanos, now)
        if len(self._totals) > self._prune_at:  # many budget keys: forget stale totals
            for scope, (_, seen) in list(self._totals.items()):
                if now - seen > VIEW_MAX_AGE_S:
                    self._totals.pop(scope, None)
            # Amortised: the next sweep waits until the view has doubled again.
            self._prune_at = max(VIEW_MAX_ENTRIES, 2 * len(self._totals))

    def hold(self, project: str, period: str, nanos: int, key: str | None = None) -> int:
        """Count ``nanos`` as spent by the project (and by its budget ``key``, if given)
        until ``release(ticket)``; returns the ticket."""
        scopes: tuple[ScopeKey, ...] = ((project, "", period),)
        if key:
            scopes += ((project, key, period),)
        ticket = next(self._tickets)
        self._held[ticket] = (scopes, nanos)
        return ticket

    def release(self, ticket: int) -> None:
        self._held.pop(ticket, None)

    def held(self, project: str, period: str, key: str = "") -> int:
        scope = (project, key, period)
        return sum(nanos for scopes, nanos in list(self._held.values()) if scope in scopes)

    def recent(self, project: str, period: str, key: str = "") -> int | None:
        """Total plus held cost, if the total is recent; else None (read the store)."""
        entry = self._totals.get((project, key, period))
        if entry is None or time.monotonic() - entry[1] > VIEW_MAX_AGE_S:
            return None
        return entry[0] + (self.held(project, period, key) if self._held else 0)

    def clear(self) -> None:
        self._totals.clear()
        self._held.clear()
