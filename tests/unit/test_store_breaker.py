"""The stores' circuit breaker on its own: when it lets an operation reach the database, and
how long it backs off."""

from __future__ import annotations

import threading

import pytest

from llm_toll.store._breaker import FIRST_RECHECK_S, MAX_RECHECK_S, Breaker
from tests.support.breaker_clock import freeze_breaker_clock

REFUSED = "the server does not accept connections: connection refused"


def test_up_until_a_connection_fails() -> None:
    breaker = Breaker()
    assert breaker.check() is None
    assert breaker.state().down is False
    breaker.succeeded()  # nothing to do while up
    assert breaker.check() is None


def test_down_operations_fail_at_once_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = freeze_breaker_clock(monkeypatch)
    breaker = Breaker()
    breaker.failed(REFUSED)
    for _ in range(100):
        reason = breaker.check()
        assert reason is not None
        assert reason.startswith(REFUSED)
        assert "tried again in 0.5 s, not at every call" in reason
    state = breaker.state()
    assert (state.down, state.failures, state.reason) == (True, 1, REFUSED)
    assert state.retry_in == FIRST_RECHECK_S
    clock.advance(0.2)
    assert breaker.state().retry_in == pytest.approx(0.3)


def test_one_recheck_per_back_off_doubling_up_to_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = freeze_breaker_clock(monkeypatch)
    breaker = Breaker()
    breaker.failed(REFUSED)
    delays = []
    for _ in range(12):
        delay = breaker.state().retry_in
        delays.append(delay)
        clock.advance(delay)
        assert breaker.check() is None  # the recheck goes to the database
        assert breaker.check() is not None  # the others still fail at once
        breaker.failed(REFUSED)  # the recheck failed
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert breaker.state().failures == 13
    clock.advance(MAX_RECHECK_S)
    assert breaker.check() is None
    breaker.succeeded()  # the recheck connected: up again, back-off forgotten
    assert breaker.state().down is False
    assert breaker.check() is None
    breaker.failed(REFUSED)
    assert breaker.state().retry_in == FIRST_RECHECK_S


def test_jitter_keeps_each_delay_between_half_and_all_of_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = freeze_breaker_clock(monkeypatch, jitter=True)
    seen: set[float] = set()
    for _ in range(200):
        breaker = Breaker()
        breaker.failed(REFUSED)
        first = breaker.state().retry_in
        assert FIRST_RECHECK_S / 2 <= first <= FIRST_RECHECK_S
        seen.add(first)
        for _ in range(8):
            clock.advance(breaker.state().retry_in)
            assert breaker.check() is None
            breaker.failed(REFUSED)
        assert MAX_RECHECK_S / 2 <= breaker.state().retry_in <= MAX_RECHECK_S
    assert len(seen) > 100  # processes that went down together do not retry in step


def test_callers_failing_together_count_once(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_breaker_clock(monkeypatch)
    breaker = Breaker()
    # Several threads had passed check() before the database went down; each fails.
    for _ in range(5):
        breaker.failed(REFUSED)
    assert breaker.state().failures == 1
    assert breaker.state().retry_in == FIRST_RECHECK_S


def test_a_recheck_that_never_reports_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = freeze_breaker_clock(monkeypatch)
    breaker = Breaker()
    breaker.failed(REFUSED)
    clock.advance(FIRST_RECHECK_S)
    assert breaker.check() is None  # its caller dies without failed() or succeeded()
    assert breaker.check() is not None
    clock.advance(FIRST_RECHECK_S)
    assert breaker.check() is None  # another caller rechecks


def test_threads_get_one_recheck_between_them(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = freeze_breaker_clock(monkeypatch)
    breaker = Breaker()
    breaker.failed(REFUSED)
    clock.advance(FIRST_RECHECK_S)
    start = threading.Barrier(16)
    let_through: list[bool] = []

    def check() -> None:
        start.wait()
        let_through.append(breaker.check() is None)

    threads = [threading.Thread(target=check) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(let_through) == [False] * 15 + [True]
