"""What llm_toll's own exporters were handed and delivered, why the rest was not, and the
one line that says so when they shut down."""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Iterable
from typing import NamedTuple

NO_ANSWER = "no answer in time"

# Words of the exporters' messages and errors (requests, urllib3, gRPC), in order of
# precedence: a gRPC UNAVAILABLE says "Connection refused" in its details.
_REASONS = (
    ("refused", "connection refused"),
    ("name or service not known", "host not found"),
    ("name resolution", "host not found"),
    ("timed out", NO_ANSWER),
    ("timeout", NO_ANSWER),
    ("deadline", NO_ANSWER),
    ("queue full", "export queue full"),
    ("queue is full", "export queue full"),
)
_HTTP_STATUS = re.compile(r"\bcode: (\d{3})\b")
_GRPC_STATUS = re.compile(r"StatusCode\.([A-Z_]+)")


class Unit(NamedTuple):
    one: str
    many: str

    def counted(self, n: int) -> str:
        return f"{n} {self.one if n == 1 else self.many}"


SPANS = Unit("span", "spans")
METRIC_EXPORTS = Unit("metric export", "metric exports")


def reason_in(text: str) -> str | None:
    """Why an export failed, in a few words, from an exporter's message or error."""
    lowered = text.lower()
    for words, reason in _REASONS:
        if words in lowered:
            return reason
    if found := _HTTP_STATUS.search(text):
        return f"HTTP {found[1]}"
    if found := _GRPC_STATUS.search(text):
        return f"gRPC {found[1]}"
    return None


class Tally:
    """One signal's export: what was handed over, delivered and failed, and why.

    Spans are counted one by one as they end, so spans dropped from a full queue or still
    queued at exit count as not delivered. Metrics are counted by export: a metric export
    carries the totals so far, so ``final_export`` adds the last one, which an abandoned
    shutdown never makes.
    """

    def __init__(self, unit: Unit, destination: str, *, final_export: bool = False) -> None:
        self.unit = unit
        self.destination = destination
        self._final_export = final_export
        self._start_afresh()
        _tallies.add(self)

    def _start_afresh(self) -> None:
        self._lock = threading.Lock()
        self._handed = self._delivered = self._failed = 0
        self._reason: str | None = None
        self.abandoned = False

    def handed(self, count: int = 1) -> None:
        with self._lock:
            self._handed += count

    def delivered(self, count: int = 1) -> None:
        with self._lock:
            self._delivered += count

    def failed(self, count: int = 1) -> None:
        with self._lock:
            self._failed += count

    def note(self, reason: str | None) -> None:
        """Keep the first reason known: later ones are mostly its consequences."""
        if reason is not None and self._reason is None:
            self._reason = reason

    def abandon(self) -> None:
        """The shutdown was left running at its deadline: refuse any export from now on."""
        self.abandoned = True

    @property
    def undelivered(self) -> int:
        with self._lock:
            missing = self._handed - self._delivered
            in_flight = missing - self._failed
        if self._final_export and self.abandoned and in_flight == 0:
            missing += 1  # the shutdown did not get as far as the last export
        return missing

    @property
    def reason(self) -> str:
        return self._reason or NO_ANSWER


_tallies: weakref.WeakSet[Tally] = weakref.WeakSet()


def _start_afresh_in_child() -> None:
    # A forked child's batch processors drop the spans queued in the parent: the child
    # answers for its own telemetry only (and must not inherit a lock held in the parent).
    for tally in list(_tallies):
        tally._start_afresh()


os.register_at_fork(after_in_child=_start_afresh_in_child)


def undelivered_line(tallies: Iterable[Tally]) -> str | None:
    """``llm_toll: 12 spans and 1 metric export not delivered to http://host:4318
    (connection refused)``, or None when everything was delivered."""
    groups: dict[tuple[str, str], list[str]] = {}
    for tally in tallies:
        if missing := tally.undelivered:
            key = (tally.destination, tally.reason)
            groups.setdefault(key, []).append(tally.unit.counted(missing))
    if not groups:
        return None
    parts = [
        f"{' and '.join(counts)} not delivered to {destination} ({reason})"
        for (destination, reason), counts in groups.items()
    ]
    return "llm_toll: " + "; ".join(parts)
