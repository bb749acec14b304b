"""Rate limits before a call: this process's windows, or windows shared through the store."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from llm_toll import _runtime
from llm_toll._call.plan import Plan
from llm_toll._warnings import warn_once
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning, LocalRateLimitError
from llm_toll.rate_limiter import RateLimiter
from llm_toll.store import StoreError
from llm_toll.usage import estimate_tokens, request_text

# The shortest pause of a ``wait=True`` call between two tries, so a ``retry_after`` of 0
# (the room frees up this instant) cannot spin.
MIN_RATE_WAIT_S = 0.001
# How ``wait=True`` calls pause before trying the rate limits again. Module attributes so
# tests replace them (with sleepers that advance a fake clock) instead of really waiting.
_sleep: Callable[[float], None] = time.sleep


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio  # async callers have imported it; sync code never needs it

    await asyncio.sleep(seconds)


_async_sleep: Callable[[float], Any] = _asyncio_sleep
# The clock of ``shared_limits=True`` windows: wall time, the one clock processes and hosts
# share (keep hosts' clocks in sync, NTP). Replaced by tests, as ``_sleep`` is.
_wall_clock: Callable[[], float] = time.time


class Lease(Protocol):
    """One admitted request: finished once, by ``settle`` (tokens used) or ``release``."""

    def settle(self, actual_tokens: int) -> None: ...

    def release(self) -> None: ...


def acquire(plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Lease | None:
    """Admit the call under its rate limits, reserving its prompt's estimated tokens when a
    tokens-per-minute limit is set (the reservation is corrected to the real count after).

    Raises ``LocalRateLimitError`` when the call does not fit. Store I/O with
    ``shared_limits``: async callers run this in the worker.
    """
    limiter = plan.limiter
    if limiter is None:
        return None
    estimate = estimate_tokens(request_text(args, kwargs)) if limiter.tpm is not None else 0
    if plan.shared_limits:
        return _acquire_shared(plan, limiter, estimate)
    return limiter.acquire(estimate)


def rate_wait(refusal: LocalRateLimitError) -> float:
    """Seconds a ``wait=True`` call pauses after ``refusal`` before trying again."""
    return max(refusal.retry_after or 0.0, MIN_RATE_WAIT_S)


def _acquire_shared(plan: Plan, limiter: RateLimiter, estimate: int) -> Lease:
    """Admit the call under limits shared through the store; when the store cannot answer,
    the process's own limiter decides."""
    scope = plan.rate_scope
    try:
        admission = _runtime.get_store().acquire_rate(
            scope, rpm=limiter.rpm, tpm=limiter.tpm, estimated_tokens=estimate, now=_wall_clock()
        )
    except (StoreError, NotImplementedError) as exc:
        warn_once(
            f"store-rate:{plan.project}",
            f"llm_toll could not check the shared rate limits of '{plan.project}' ({exc}); "
            "this process's own limits are applied instead.",
            AccountingWarning,
        )
        return limiter.acquire(estimate)
    if not admission.admitted:
        limit_type = admission.limit_type or "rpm"
        limit_value = limiter.rpm if limit_type == "rpm" else limiter.tpm
        raise LocalRateLimitError(
            limit_type=limit_type, limit_value=limit_value, retry_after=admission.retry_after
        )
    assert admission.lease_id is not None
    return SharedRateLease(scope, admission.lease_id, counts_tokens=limiter.tpm is not None)


class SharedRateLease:
    """The admission of one request under shared limits; as a local ``RateLease``, finish
    it once with :meth:`settle` or :meth:`release`. On an event loop the store write goes
    to llm_toll's worker thread."""

    __slots__ = ("_done", "_lease_id", "_scope")

    def __init__(self, scope: str, lease_id: int, *, counts_tokens: bool = True) -> None:
        self._scope = scope
        self._lease_id = lease_id
        # Without a TPM limit there is no estimate to correct: nothing to write.
        self._done = not counts_tokens

    @property
    def done(self) -> bool:
        return self._done

    def settle(self, actual_tokens: int) -> None:
        self._finish(actual_tokens)

    def release(self) -> None:
        self._finish(0)

    def _finish(self, actual_tokens: int) -> None:
        if self._done:
            return
        self._done = True
        now = _wall_clock()
        if _on_event_loop():
            worker.submit(_settle_shared, self._scope, self._lease_id, actual_tokens, now)
        else:
            _settle_shared(self._scope, self._lease_id, actual_tokens, now)


def _on_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")  # not imported: no event loop can be running
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _settle_shared(scope: str, lease_id: int, actual_tokens: int, now: float) -> None:
    try:
        _runtime.get_store().settle_rate(scope, lease_id, actual_tokens, now)
    except (StoreError, NotImplementedError) as exc:
        warn_once(
            f"store-rate-settle:{type(exc).__name__}",
            f"llm_toll could not settle a shared rate-limit reservation ({exc}); its "
            "estimate counts until it leaves the window.",
            AccountingWarning,
        )
