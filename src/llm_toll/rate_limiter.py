"""Local requests-per-minute and tokens-per-minute limits over a sliding 60-second window.

An entry made at time ``t`` counts while ``now < t + 60`` and is gone at ``t + 60`` exactly,
so a ``retry_after`` of ``r`` seconds means: a retry ``r`` seconds later is admitted (unless
other callers take the room first).

No time from the future is trusted: an entry made after ``now`` (a clock that stepped back,
or, in a store's shared windows, another host's clock that runs ahead) counts as made at
``now``, so no one is ever asked to wait more than the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from llm_toll._budget.records import LimitKind
from llm_toll._options import count_option
from llm_toll.exceptions import LocalRateLimitError

WINDOW_SECONDS = 60.0


class RateRefusal(NamedTuple):
    """Why a request does not fit in its window, and when it would."""

    limit_type: LimitKind
    retry_after: float
    """Seconds until the request would be admitted (never negative)."""


def window_refusal(
    *,
    requests: Sequence[float],
    held: Iterable[tuple[float, int]],
    held_tokens: int,
    rpm: int | None,
    tpm: int | None,
    estimated_tokens: int,
    now: float,
) -> RateRefusal | None:
    """The refusal of a request of ``estimated_tokens`` at ``now``, or None when it fits.

    ``requests`` are the times of the requests in the window and ``held`` the ``(time,
    tokens)`` entries in it, oldest first, ``held_tokens`` their sum. The rules, the same
    for this process's windows (:class:`RateLimiter`) and those kept in a store
    (``shared_limits=True``): a request needs at least one token of room under ``tpm``; an
    estimate above the whole limit needs an empty window rather than being refused
    forever; when both limits refuse, the one that frees up last is reported, so its
    ``retry_after`` is when the request would be admitted.
    """
    refusals: list[RateRefusal] = []
    if rpm is not None and len(requests) >= rpm:
        # The (excess + 1) oldest requests must leave the window.
        oldest_to_expire = requests[len(requests) - rpm]
        refusals.append(RateRefusal("rpm", oldest_to_expire + WINDOW_SECONDS - now))
    if tpm is not None:
        needed = min(max(estimated_tokens, 1), tpm)
        excess = held_tokens + needed - tpm
        if excess > 0:
            refusals.append(RateRefusal("tpm", _seconds_until_freed(held, excess, now)))
    if not refusals:
        return None
    limit_type, retry_after = max(refusals, key=lambda refusal: refusal.retry_after)
    # Within the window whatever the entries' times: the callers count entries from the
    # future as made now, and this holds even if one did not.
    return RateRefusal(limit_type, min(max(0.0, retry_after), WINDOW_SECONDS))


def _seconds_until_freed(held: Iterable[tuple[float, int]], tokens: int, now: float) -> float:
    """Seconds until at least ``tokens`` tokens have left the window (oldest go first)."""
    freed = 0
    for at, held_tokens in held:
        freed += held_tokens
        if freed >= tokens:
            return at + WINDOW_SECONDS - now
    # Unreachable: ``tokens`` never exceeds the sum in the window.
    raise AssertionError("token window sum out of step with its entries")


class _TokenEntry:
    """Tokens counted in the window from ``at``; mutable so a lease can take back its tokens."""

    __slots__ = ("at", "tokens")

    def __init__(self, at: float, tokens: int) -> None:
        self.at = at
        self.tokens = tokens


class RateLease:
    """The admission of one request by :meth:`RateLimiter.acquire`.

    Finish it once with :meth:`settle` (the call ran; here is what it used) or
    :meth:`release` (the call failed before using tokens). Later calls of either are no-ops.
    """

    __slots__ = ("_done", "_limiter", "_reservation")

    def __init__(self, limiter: RateLimiter, reservation: _TokenEntry | None) -> None:
        self._limiter = limiter
        self._reservation = reservation
        self._done = False

    @property
    def done(self) -> bool:
        """True once the lease has been settled or released."""
        return self._done

    def settle(self, actual_tokens: int) -> None:
        """Replace the reserved estimate by the tokens the call really used.

        The actual tokens are counted from now: the call is known to have used them now, and
        a long call must not see its tokens expire before they are known.
        """
        _check_count("actual_tokens", actual_tokens)
        self._limiter._finish(self, actual_tokens)

    def release(self) -> None:
        """Give back the reserved tokens of a call that failed before using any.

        The request itself still counts towards the RPM limit: it was made, and a provider
        would have counted it too.
        """
        self._limiter._finish(self, 0)


class RateLimiter:
    """Sliding-window RPM and TPM limits, enforced locally before a request is sent.

    :meth:`acquire` checks both limits and records the request in one critical section, so
    concurrent callers cannot all slip past a limit. The older :meth:`check` then
    :meth:`record` pair is kept for compatibility; it is racy between the two calls.

    Parameters
    ----------
    rpm:
        Maximum requests per minute, or ``None`` for no limit.
    tpm:
        Maximum tokens per minute, or ``None`` for no limit.
    clock:
        Seconds as a float from a monotonic source; ``time.monotonic`` by default.
        ``_clock``, llm-toll 0.13's name for it, is accepted too. Should a clock step
        back, entries made after its new time count as made then (see the module's notes).
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Callable[[], float] | None = None,
        _clock: Callable[[], float] | None = None,
    ) -> None:
        if clock is not None and _clock is not None:
            raise TypeError("pass clock or _clock (its llm-toll 0.13 name), not both")
        self._rpm = count_option("rpm", rpm)
        self._tpm = count_option("tpm", tpm)
        self._clock = clock or _clock or time.monotonic
        self._lock = threading.Lock()
        self._requests: deque[float] = deque()
        self._token_entries: deque[_TokenEntry] = deque()
        # Sum of the tokens in _token_entries, kept current so a check is O(1).
        self._token_sum = 0

    @property
    def rpm(self) -> int | None:
        return self._rpm

    @property
    def tpm(self) -> int | None:
        return self._tpm

    def acquire(self, estimated_tokens: int = 0) -> RateLease:
        """Admit one request and reserve ``estimated_tokens`` for it, or raise.

        Raises :class:`LocalRateLimitError` (nothing recorded) when the request does not fit.
        A request needs at least one token of room under the TPM limit; an estimate larger
        than the whole limit needs an empty window rather than being refused forever.
        """
        _check_count("estimated_tokens", estimated_tokens)
        with self._lock:
            now = self._clock()
            self._prune(now)
            error = self._refusal(now, estimated_tokens)
            if error is not None:
                raise error
            if self._rpm is not None:
                self._requests.append(now)
            reservation = None
            if self._tpm is not None and estimated_tokens > 0:
                reservation = _TokenEntry(now, estimated_tokens)
                self._add_tokens(reservation)
        return RateLease(self, reservation)

    def check(self) -> None:
        """Raise :class:`LocalRateLimitError` if a request now would exceed a limit.

        Records nothing: call :meth:`record` after the request. Prefer :meth:`acquire`, which
        does both atomically.
        """
        with self._lock:
            now = self._clock()
            self._prune(now)
            error = self._refusal(now, 0)
        if error is not None:
            raise error

    def record(self, tokens: int = 0) -> None:
        """Count one request made now, with the tokens it used."""
        _check_count("tokens", tokens)
        with self._lock:
            now = self._clock()
            self._prune(now)
            if self._rpm is not None:
                self._requests.append(now)
            if self._tpm is not None and tokens > 0:
                self._add_tokens(_TokenEntry(now, tokens))

    # -- internals, called with the lock held unless stated ---------------------------------

    def _finish(self, lease: RateLease, actual_tokens: int) -> None:
        """Settle or release ``lease`` once; takes the lock."""
        with self._lock:
            if lease._done:
                return
            lease._done = True
            reservation = lease._reservation
            if reservation is not None:
                # An entry already pruned has tokens == 0, so this never subtracts twice.
                self._token_sum -= reservation.tokens
                reservation.tokens = 0
            if self._tpm is not None and actual_tokens > 0:
                now = self._clock()
                self._prune(now)
                self._add_tokens(_TokenEntry(now, actual_tokens))

    def _add_tokens(self, entry: _TokenEntry) -> None:
        self._token_entries.append(entry)
        self._token_sum += entry.tokens

    def _prune(self, now: float) -> None:
        cutoff = now - WINDOW_SECONDS
        requests = self._requests
        while requests and requests[0] <= cutoff:
            requests.popleft()
        entries = self._token_entries
        while entries and entries[0].at <= cutoff:
            expired = entries.popleft()
            self._token_sum -= expired.tokens
            expired.tokens = 0
        if (requests and requests[-1] > now) or (entries and entries[-1].at > now):
            self._restamp_future(now)

    def _restamp_future(self, now: float) -> None:
        """Entries made after ``now`` (the clock stepped back) count as made now: they leave
        the window one window from now, not one window plus the step. Entries are in time
        order, so those are the newest, and the order holds."""
        requests = self._requests
        future = 0
        while requests and requests[-1] > now:
            requests.pop()
            future += 1
        requests.extend([now] * future)
        for entry in reversed(self._token_entries):
            if entry.at <= now:
                break
            entry.at = now

    def _refusal(self, now: float, estimated_tokens: int) -> LocalRateLimitError | None:
        """The error for a request of ``estimated_tokens`` now, or None if it fits."""
        refusal = window_refusal(
            requests=self._requests,
            held=((entry.at, entry.tokens) for entry in self._token_entries),
            held_tokens=self._token_sum,
            rpm=self._rpm,
            tpm=self._tpm,
            estimated_tokens=estimated_tokens,
            now=now,
        )
        if refusal is None:
            return None
        limit = self._rpm if refusal.limit_type == "rpm" else self._tpm
        return LocalRateLimitError(
            limit_type=refusal.limit_type, limit_value=limit, retry_after=refusal.retry_after
        )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
