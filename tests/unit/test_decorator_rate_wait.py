"""``wait=True``: a rate-limited call waits out ``retry_after`` and runs, instead of raising;
``shared_limits=True``: the limits are checked in the store.

No test really waits: the decorator's limiter runs on a fake clock (``RateLimiter`` is
replaced, before decorating, by one built with ``clock=``), ``llm_toll._call.admission._wall_clock``
(the shared limits' clock) is that clock too, and ``llm_toll._call.admission._sleep`` /
``_async_sleep`` (the documented seam) are replaced by sleepers that advance it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

import pytest

from llm_toll import LocalRateLimitError, _runtime, decorator, track_costs
from llm_toll._call import admission
from llm_toll.exceptions import AccountingWarning
from llm_toll.rate_limiter import RateLimiter
from llm_toll.store import SQLiteStore
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(decorator, "RateLimiter", functools.partial(RateLimiter, clock=fake))
    monkeypatch.setattr(admission, "_sleep", fake.sleep)
    monkeypatch.setattr(admission, "_async_sleep", fake.async_sleep)
    monkeypatch.setattr(admission, "_wall_clock", fake)
    return fake


def test_sync_call_waits_out_the_rpm_window(
    store: SQLiteStore, telemetry: Telemetry, clock: FakeClock
) -> None:
    ran: list[float] = []

    @track_costs(project="rate-wait", rate_limit=2, wait=True)
    def ask() -> dict[str, Any]:
        ran.append(clock())
        return chat(10, 1)

    ask()
    clock.now += 10.0
    ask()
    ask()  # the window is full: waits until the first call leaves it, 50 s later
    assert clock.sleeps == [pytest.approx(50.0)]
    assert ran == [1000.0, 1010.0, pytest.approx(1060.0)]
    ask()  # then until the second one leaves it
    assert clock.sleeps == [pytest.approx(50.0), pytest.approx(10.0)]
    assert len(ran) == 4
    assert len(store.get_usage_logs("rate-wait", limit=100)) == 4
    # A call that waited is not a refusal: no error span, no rejection counted.
    assert not [s for s in telemetry.spans() if (s.attributes or {}).get("error.type")]
    assert not telemetry.sum_for(
        "llm_toll.ratelimit.rejections", **{"llm_toll.project": "rate-wait"}
    )


def test_sync_call_waits_out_the_tpm_window(store: SQLiteStore, clock: FakeClock) -> None:
    @track_costs(project="tpm-wait", tpm_limit=100, wait=True)
    def ask(prompt: str) -> dict[str, Any]:
        return chat(60, 1)

    prompt = "word " * 48  # about 60 tokens by llm_toll's estimate
    ask(prompt)  # 61 tokens in the window
    clock.now += 5.0
    ask(prompt)  # 61 + ~60 > 100: waits for the first call's tokens to leave (55 s)
    assert clock.sleeps == [pytest.approx(55.0)]
    assert len(store.get_usage_logs("tpm-wait", limit=100)) == 2


def test_without_wait_the_refusal_still_raises(store: SQLiteStore, clock: FakeClock) -> None:
    @track_costs(project="rate-nowait", rate_limit=1)
    def ask() -> dict[str, Any]:
        return chat(10, 1)

    ask()
    with pytest.raises(LocalRateLimitError) as refused:
        ask()
    assert refused.value.retry_after == pytest.approx(60.0)
    assert clock.sleeps == []


async def test_async_calls_await_their_turn(
    store: SQLiteStore, telemetry: Telemetry, clock: FakeClock
) -> None:
    ran: list[float] = []

    @track_costs(project="rate-wait-async", rate_limit=3, wait=True)
    async def ask() -> dict[str, Any]:
        ran.append(clock())
        return chat(10, 1)

    await asyncio.gather(*(ask() for _ in range(7)))
    assert len(ran) == 7
    # Never more than 3 calls in any 60-second window of the fake clock.
    for i, start in enumerate(ran):
        assert sum(1 for t in ran[i:] if t < start + 60.0) <= 3
    assert clock() >= 1120.0  # the 7th call needed two full windows to pass
    assert all(s > 0 for s in clock.sleeps)
    assert not telemetry.sum_for(
        "llm_toll.ratelimit.rejections", **{"llm_toll.project": "rate-wait-async"}
    )


@pytest.mark.filterwarnings("ignore::UserWarning")  # the chunks carry no usage or price
async def test_async_generator_waits_too(store: SQLiteStore, clock: FakeClock) -> None:
    @track_costs(project="rate-wait-agen", rate_limit=1, wait=True)
    async def stream() -> Any:
        yield chat(10, 1)

    assert len([c async for c in stream()]) == 1
    assert len([c async for c in stream()]) == 1
    assert clock.sleeps == [pytest.approx(60.0)]


def test_wait_needs_a_rate_limit_and_a_bool() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        track_costs(project="p", wait=True)
    with pytest.raises(ValueError, match="wait must be"):
        track_costs(project="p", rate_limit=1, wait=1)  # type: ignore[call-overload]


# -- shared_limits=True ------------------------------------------------------------------


def test_shared_limits_are_one_limit_for_every_decoration(
    store: SQLiteStore, clock: FakeClock
) -> None:
    # Two decorations of one function (as in two processes) share the store's window.
    def make() -> Any:
        @track_costs(project="shared", rate_limit=2, shared_limits=True)
        def ask() -> dict[str, Any]:
            return chat(10, 1)

        return ask

    first, second = make(), make()
    first()
    second()
    with pytest.raises(LocalRateLimitError) as refused:
        first()
    assert (refused.value.limit_type, refused.value.limit_value) == ("rpm", 2)
    assert refused.value.retry_after == pytest.approx(60.0)
    assert not store.acquire_rate(
        "shared:test_shared_limits_are_one_limit_for_every_decoration.<locals>.make.<locals>.ask",
        rpm=2,
        tpm=None,
        estimated_tokens=0,
        now=clock(),
    ).admitted


def test_shared_limits_wait_and_settle_tokens(store: SQLiteStore, clock: FakeClock) -> None:
    @track_costs(project="shared-tpm", tpm_limit=100, wait=True, shared_limits=True)
    def ask(prompt: str) -> dict[str, Any]:
        return chat(60, 1)

    prompt = "word " * 48  # about 60 tokens by llm_toll's estimate
    ask(prompt)  # settled to 61 tokens
    clock.now += 5.0
    ask(prompt)  # waits for the first call's tokens to leave the window
    assert clock.sleeps == [pytest.approx(55.0)]
    assert len(store.get_usage_logs("shared-tpm", limit=100)) == 2


def test_after_the_wall_clock_steps_back_an_hour_a_shared_limit_waits_a_minute(
    store: SQLiteStore, clock: FakeClock
) -> None:
    @track_costs(project="shared-step", rate_limit=1, wait=True, shared_limits=True)
    def ask() -> dict[str, Any]:
        return chat(10, 1)

    clock.now += 3600.0
    ask()
    clock.now -= 3600.0  # NTP steps the wall clock back an hour
    ask()  # waits until the first call leaves the window: one window, not 3,660 s
    assert clock.sleeps == [pytest.approx(60.0)]
    assert len(store.get_usage_logs("shared-step", limit=100)) == 2


async def test_shared_limits_in_async_code_wait_off_the_loop(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The admission times as the store decided them: the fake clock moves on while other
    # coroutines "sleep", so a time read inside the call could be later than its admission.
    admitted: list[float] = []
    acquire = store.acquire_rate

    def recording_acquire(
        scope: str, *, rpm: int | None, tpm: int | None, estimated_tokens: int, now: float
    ) -> Any:
        result = acquire(scope, rpm=rpm, tpm=tpm, estimated_tokens=estimated_tokens, now=now)
        if result.admitted:
            admitted.append(now)
        return result

    monkeypatch.setattr(store, "acquire_rate", recording_acquire)
    ran = 0

    @track_costs(project="shared-async", rate_limit=2, wait=True, shared_limits=True)
    async def ask() -> dict[str, Any]:
        nonlocal ran
        ran += 1
        return chat(10, 1)

    await asyncio.gather(*(ask() for _ in range(5)))
    assert ran == 5
    assert len(admitted) == 5
    times = sorted(admitted)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 60.0) <= 2, times


def test_a_store_without_shared_limits_falls_back_to_the_local_limiter(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("no shared rate limits here")

    monkeypatch.setattr(store, "acquire_rate", unsupported)

    @track_costs(project="shared-fallback", rate_limit=1, shared_limits=True)
    def ask() -> dict[str, Any]:
        return chat(10, 1)

    with pytest.warns(AccountingWarning, match="shared rate limits"):
        ask()
    with pytest.raises(LocalRateLimitError):
        ask()
    assert _runtime.get_store() is store


def test_shared_limits_needs_a_rate_limit_and_a_bool() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        track_costs(project="p", shared_limits=True)
    with pytest.raises(ValueError, match="shared_limits must be"):
        track_costs(project="p", rate_limit=1, shared_limits="yes")  # type: ignore[call-overload]
