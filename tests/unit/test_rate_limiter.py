"""RateLimiter: sliding-window RPM/TPM limits, atomic leases, and the 0.13 check/record API."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from llm_toll.exceptions import LocalRateLimitError
from llm_toll.rate_limiter import RateLimiter


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads as often as possible so that a race, if any, shows up."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def refusal(limiter: RateLimiter, estimated_tokens: int = 0) -> LocalRateLimitError:
    with pytest.raises(LocalRateLimitError) as info:
        limiter.acquire(estimated_tokens)
    return info.value


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (-5, None), (None, 0), (None, -1)])
def test_non_positive_limits_are_rejected(rpm: int | None, tpm: int | None) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        RateLimiter(rpm=rpm, tpm=tpm)


@pytest.mark.parametrize("value", [True, 1.5, "10"])
def test_non_integer_limits_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="rpm must be a positive integer"):
        RateLimiter(rpm=value)  # type: ignore[arg-type]


def test_the_013_name_of_the_clock_is_accepted(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=1, _clock=clock)
    limiter.record()
    clock.advance(59.5)
    assert refusal(limiter).retry_after == pytest.approx(0.5)
    with pytest.raises(TypeError, match="not both"):
        RateLimiter(rpm=1, clock=clock, _clock=clock)


def test_negative_token_counts_are_rejected(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    with pytest.raises(ValueError, match="estimated_tokens"):
        limiter.acquire(-1)
    lease = limiter.acquire(1)
    with pytest.raises(ValueError, match="actual_tokens"):
        lease.settle(-3)
    with pytest.raises(ValueError, match="tokens"):
        limiter.record(tokens=-1)


def test_without_limits_everything_is_admitted(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock)
    for _ in range(1000):
        limiter.acquire(10**9).settle(10**9)
    limiter.check()


# -- RPM ------------------------------------------------------------------------------------


def test_rpm_admits_exactly_the_limit_and_reports_when_to_retry(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=3, clock=clock)
    for _ in range(3):
        limiter.acquire()
        clock.advance(10)

    error = refusal(limiter)
    assert (error.limit_type, error.limit_value) == ("rpm", 3)
    # The first request was made 30 s ago; it leaves the window in 30 s.
    assert error.retry_after == 30.0

    clock.advance(29.5)
    assert refusal(limiter).retry_after == 0.5
    clock.advance(0.5)
    limiter.acquire()
    # The window now holds the requests of t+10, t+20 and t+60.
    assert refusal(limiter).retry_after == 10.0


def test_refused_requests_are_not_counted(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=1, clock=clock)
    limiter.acquire()
    for _ in range(5):
        refusal(limiter)
    clock.advance(60)
    limiter.acquire()
    assert refusal(limiter).retry_after == 60.0


# -- TPM ------------------------------------------------------------------------------------


def test_tpm_reserves_the_estimate_and_reports_when_enough_tokens_expire(
    clock: FakeClock,
) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    limiter.acquire(40)
    clock.advance(10)
    limiter.acquire(30)
    clock.advance(10)
    limiter.acquire(20)  # 90 of 100 reserved

    error = refusal(limiter, 50)
    assert (error.limit_type, error.limit_value) == ("tpm", 100)
    # 40 must leave: the first entry alone frees them, at t+60 (40 s from now).
    assert error.retry_after == 40.0
    # 65 must leave: the first two entries (70), the second leaves at t+70.
    assert refusal(limiter, 75).retry_after == 50.0
    # 75 must leave: all three entries, the last leaves at t+80.
    assert refusal(limiter, 85).retry_after == 60.0

    limiter.acquire(10)  # exactly fills the window
    assert refusal(limiter).retry_after == 40.0  # a request needs one token of room

    clock.advance(40)
    limiter.acquire(40)


def test_an_estimate_above_the_whole_limit_waits_for_an_empty_window(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    limiter.acquire(1)
    clock.advance(5)
    assert refusal(limiter, 500).retry_after == 55.0
    clock.advance(55)
    limiter.acquire(500)
    assert refusal(limiter, 1).limit_type == "tpm"


def test_when_both_limits_refuse_the_later_one_is_reported(clock: FakeClock) -> None:
    rpm_later = RateLimiter(rpm=2, tpm=100, clock=clock)
    rpm_later.record(tokens=100)
    clock.advance(10)
    rpm_later.record()
    clock.advance(10)
    rpm_later.record()
    # The 100 tokens leave in 40 s, but two requests must leave: the second goes in 50 s.
    error = refusal(rpm_later)
    assert (error.limit_type, error.retry_after) == ("rpm", 50.0)

    tpm_later = RateLimiter(rpm=2, tpm=100, clock=clock)
    tpm_later.acquire(0)
    clock.advance(20)
    tpm_later.acquire(100)
    clock.advance(5)
    # RPM frees up in 35 s but the 100 tokens stay until 55 s from now.
    error = refusal(tpm_later)
    assert (error.limit_type, error.retry_after) == ("tpm", 55.0)


# -- leases ---------------------------------------------------------------------------------


def test_settle_lowers_the_reservation_to_the_actual_count(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    lease = limiter.acquire(80)
    refusal(limiter, 30)
    lease.settle(10)
    assert lease.done
    limiter.acquire(90)
    refusal(limiter, 1)


def test_settle_counts_the_actual_tokens_from_the_moment_they_are_known(
    clock: FakeClock,
) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    lease = limiter.acquire(10)
    clock.advance(30)
    lease.settle(100)
    error = refusal(limiter)
    assert error.retry_after == 60.0
    clock.advance(59)
    refusal(limiter)
    clock.advance(1)
    limiter.acquire(100)


def test_settle_is_applied_once(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    lease = limiter.acquire(50)
    lease.settle(20)
    lease.settle(90)
    lease.release()
    limiter.acquire(80)  # 20 + 80: only the first settle counted
    refusal(limiter, 1)


def test_settle_after_the_reservation_expired_does_not_subtract_it_again(
    clock: FakeClock,
) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    lease = limiter.acquire(50)
    clock.advance(70)
    lease.settle(20)
    refusal(limiter, 81)
    limiter.acquire(80)


def test_release_returns_the_tokens_but_the_request_still_counts(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=2, tpm=100, clock=clock)
    lease = limiter.acquire(100)
    lease.release()
    lease.release()
    assert lease.done
    limiter.acquire(100)
    error = refusal(limiter)
    assert error.limit_type == "rpm"


# -- concurrency and cost -------------------------------------------------------------------


def _hammer(limiter: RateLimiter, estimated_tokens: int, threads: int, attempts: int) -> int:
    admitted = 0
    count_lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        nonlocal admitted
        start.wait()
        mine = 0
        for _ in range(attempts):
            try:
                limiter.acquire(estimated_tokens)
            except LocalRateLimitError:
                continue
            mine += 1
        with count_lock:
            admitted += mine

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return admitted


@pytest.mark.usefixtures("frequent_thread_switches")
def test_sixteen_threads_cannot_slip_past_the_rpm_limit(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=100, clock=clock)
    assert _hammer(limiter, 0, threads=16, attempts=200) == 100


@pytest.mark.usefixtures("frequent_thread_switches")
def test_sixteen_threads_cannot_slip_past_the_tpm_limit(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=1000, clock=clock)
    assert _hammer(limiter, 7, threads=16, attempts=200) == 1000 // 7


class Unscannable(deque[Any]):
    """A window that fails the test if anything walks through it."""

    def __iter__(self) -> Iterator[Any]:  # a generator: fails when walked, not when started
        raise AssertionError("a check walked through the whole window")
        yield


def test_checks_do_not_rescan_the_window(clock: FakeClock) -> None:
    """20,000 requests in one window, each checked against running sums: no check walks
    the window (a sum over it per check would make checks O(n))."""
    limiter = RateLimiter(rpm=10**9, tpm=10**12, clock=clock)
    limiter._requests = Unscannable()
    limiter._token_entries = Unscannable()
    for _ in range(20_000):
        limiter.acquire(5).settle(7)
    assert limiter._token_sum == 7 * 20_000
    assert len(limiter._requests) == 20_000


# -- llm-toll 0.13 API ----------------------------------------------------------------------


def test_check_then_record_enforces_rpm(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=2, clock=clock)
    for _ in range(2):
        limiter.check()
        limiter.record()
        clock.advance(1)
    with pytest.raises(LocalRateLimitError) as info:
        limiter.check()
    assert (info.value.limit_type, info.value.limit_value, info.value.retry_after) == (
        "rpm",
        2,
        58.0,
    )


def test_check_records_nothing(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=1, clock=clock)
    for _ in range(10):
        limiter.check()
    limiter.acquire()


def test_record_beyond_the_limit_delays_the_retry_accordingly(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=2, clock=clock)
    for _ in range(4):  # record() never refuses: the request was already made
        limiter.record()
        clock.advance(1)
    with pytest.raises(LocalRateLimitError) as info:
        limiter.check()
    # Three of the four must leave; the third was recorded at t+2, now is t+4.
    assert info.value.retry_after == 58.0


def test_record_counts_tokens_for_tpm(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    limiter.record(tokens=60)
    limiter.check()
    clock.advance(15)
    limiter.record(tokens=40)
    with pytest.raises(LocalRateLimitError) as info:
        limiter.check()
    assert (info.value.limit_type, info.value.retry_after) == ("tpm", 45.0)
    clock.advance(45)
    limiter.check()


# -- a clock that steps ---------------------------------------------------------------------
# time.monotonic never steps back; a clock= the caller passes may. Entries made "after" the
# clock's new time count as made then: no one is asked to wait more than the window.


def test_after_the_clock_steps_back_the_wait_is_at_most_the_window(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=2, tpm=100, clock=clock)
    limiter.acquire(30).settle(40)
    clock.advance(10)
    limiter.acquire(50)
    clock.advance(-3600)  # an hour back
    error = refusal(limiter)
    assert error.limit_type == "rpm"
    assert error.retry_after == 60.0  # not 3,660 s or more
    clock.advance(60)
    limiter.acquire(10)  # both entries left the window one window after the step


def test_the_window_stays_in_order_after_the_clock_steps_back(clock: FakeClock) -> None:
    limiter = RateLimiter(rpm=3, clock=clock)
    limiter.acquire()  # at 1000
    clock.advance(30)
    limiter.acquire()  # at 1030
    clock.advance(-20)  # back to 1010: the entry of 1030 counts as made at 1010
    limiter.acquire()  # at 1010
    assert refusal(limiter).retry_after == 50.0  # the entry of 1000 leaves first
    clock.advance(50)
    limiter.acquire()  # at 1060: the two of 1010 are left, and leave first
    assert refusal(limiter).retry_after == 10.0


def test_tokens_from_before_a_step_back_leave_one_window_after_it(clock: FakeClock) -> None:
    limiter = RateLimiter(tpm=100, clock=clock)
    clock.advance(3600)
    limiter.acquire(90)
    clock.advance(-3600)
    error = refusal(limiter, 20)
    assert (error.limit_type, error.retry_after) == ("tpm", 60.0)
    clock.advance(60)
    limiter.acquire(20)
