"""A store's circuit breaker: once its database is found down, operations fail at once
instead of each waiting on it, and the database is tried again with exponential back-off.

"Down" means a connection could not be made (a server that refuses or does not answer, a
SQLite file that cannot be opened); a busy or locked database is not down. While it is
down, one operation per back-off interval is let through to try again (the recheck): its
success closes the breaker, its failure doubles the interval, up to ``MAX_RECHECK_S``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

FIRST_RECHECK_S = 0.5
MAX_RECHECK_S = 30.0

# Module attributes so tests replace them (a clock they advance) instead of really waiting.
_clock: Callable[[], float] = time.monotonic
_random: Callable[[], float] = random.random


class BreakerState(NamedTuple):
    """What a breaker knows: ``down`` since a failed connection, and for how long it lets
    no operation through (``retry_in`` seconds; 0 when the next one is a recheck)."""

    down: bool
    failures: int
    """Failed connections in a row: the first, then each failed recheck."""
    reason: str | None
    retry_in: float


class Breaker:
    """Whether one store's database is down; thread-safe, one per store and process."""

    __slots__ = ("_delay", "_failures", "_lock", "_next_at", "_reason", "_recheck_out")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0  # 0: up
        self._reason = ""
        self._next_at = 0.0  # no operation reaches the database before this (monotonic)
        self._delay = 0.0
        self._recheck_out = False  # a recheck was let through and has not reported yet

    @property
    def down(self) -> bool:
        return bool(self._failures)

    def check(self) -> str | None:
        """None: go to the database (it is up, or this caller makes the recheck). Else why
        not, for the error the operation fails with at once."""
        if not self._failures:  # the hot path: no lock while the database is up
            return None
        with self._lock:
            if not self._failures:
                return None
            now = _clock()
            if now >= self._next_at:
                # This caller rechecks. Should it never report, another may after a delay.
                self._recheck_out = True
                self._next_at = now + self._delay
                return None
            return (
                f"{self._reason} (the database is treated as down: tried again in "
                f"{self._next_at - now:.1f} s, not at every call)"
            )

    def failed(self, reason: str) -> None:
        """A connection could not be made: the database is down; a failed recheck backs
        off twice as long (with jitter, so processes do not retry in step)."""
        with self._lock:
            first = not self._failures
            if not first and not self._recheck_out:
                # One of several callers that tried at once when it went down: counted once.
                self._reason = reason
                return
            self._failures += 1
            self._recheck_out = False
            self._reason = reason
            bound = min(MAX_RECHECK_S, FIRST_RECHECK_S * 2 ** min(self._failures - 1, 16))
            self._delay = bound * (0.5 + 0.5 * _random())
            self._next_at = _clock() + self._delay

    def succeeded(self) -> None:
        """A connection was made: the database is up."""
        if not self._failures:
            return
        with self._lock:
            self._failures = 0
            self._recheck_out = False
            self._reason = ""

    def state(self) -> BreakerState:
        with self._lock:
            if not self._failures:
                return BreakerState(False, 0, None, 0.0)
            retry_in = max(0.0, self._next_at - _clock())
            return BreakerState(True, self._failures, self._reason, retry_in)
