"""Every backend: no time from the future is trusted, so a clock that steps back or forward
(or another host's clock that runs ahead) never makes anyone wait more than a window or a
reservation's TTL, and never moves spend into a period still to come.

The clocks here are the times the store API is given (``now=``, ``at=``): what a host whose
clock stepped writes. The rows it leaves are read by a caller with the right time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec
from llm_toll.rate_limiter import WINDOW_SECONDS
from llm_toll.store import BaseStore
from tests.stores.helpers import DAILY, MONDAY, T0, all_logs, make_call

HOUR = 3600.0


def rpm_1(store: BaseStore, now: float) -> tuple[bool, float]:
    admission = store.acquire_rate("clock", rpm=1, tpm=None, estimated_tokens=0, now=now)
    return admission.admitted, admission.retry_after


# -- shared rate windows ------------------------------------------------------------------------


def test_after_the_clock_steps_back_an_hour_no_one_waits_more_than_the_window(
    store: BaseStore,
) -> None:
    assert rpm_1(store, T0 + HOUR) == (True, 0.0)  # admitted, then the clock steps back
    admitted, retry_after = rpm_1(store, T0)
    assert not admitted
    assert retry_after == pytest.approx(WINDOW_SECONDS)  # the row counts as made now: not 3,660 s
    assert not rpm_1(store, T0 + 59)[0]
    assert rpm_1(store, T0 + WINDOW_SECONDS)[0]  # and it is gone one window later


def test_rows_of_a_host_whose_clock_runs_ahead_count_as_made_now(store: BaseStore) -> None:
    ahead = store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=80, now=T0 + HOUR)
    assert ahead.admitted and ahead.lease_id is not None
    store.settle_rate("t", ahead.lease_id, 90, T0 + HOUR + 5)  # its tokens, settled ahead too
    refused = store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=20, now=T0)
    assert (refused.admitted, refused.limit_type) == (False, "tpm")
    assert refused.retry_after == pytest.approx(WINDOW_SECONDS)
    assert store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=20, now=T0 + 60).admitted


def test_a_clock_step_forward_then_back_asks_for_at_most_the_window(store: BaseStore) -> None:
    assert rpm_1(store, T0)[0]
    assert rpm_1(store, T0 + HOUR)[0]  # forward: the window of T0 is long gone
    admitted, retry_after = rpm_1(store, T0 + 10)  # back again, ten seconds after T0
    assert not admitted
    assert retry_after == pytest.approx(WINDOW_SECONDS)
    assert rpm_1(store, T0 + 10 + WINDOW_SECONDS)[0]


def test_with_many_rows_in_the_window_the_retry_is_still_within_it(store: BaseStore) -> None:
    for n in range(5):  # a host ahead by an hour fills the window
        assert store.acquire_rate("m", rpm=5, tpm=None, estimated_tokens=0, now=T0 + HOUR + n)
    for n in range(3):  # requests at the right time, each told when it may come back
        refused = store.acquire_rate("m", rpm=5, tpm=None, estimated_tokens=0, now=T0 + 20 * n)
        assert not refused.admitted
        assert 0 < refused.retry_after <= WINDOW_SECONDS
    assert store.acquire_rate("m", rpm=5, tpm=None, estimated_tokens=0, now=T0 + 60).admitted


# -- strict budgets' reservations -------------------------------------------------------------


def reserve(store: BaseStore, at: datetime, amount: int, ttl_s: float = 60.0) -> bool:
    reservation = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=at, amount_nanos=amount, ttl_s=ttl_s
    )
    return reservation is not None


def test_a_reservation_from_a_clock_ahead_holds_no_longer_than_its_ttl(store: BaseStore) -> None:
    # A host whose clock is an hour ahead reserves the whole budget, then dies.
    assert reserve(store, MONDAY + timedelta(hours=1), 1_000)
    assert not reserve(store, MONDAY, 100)  # someone needs the room: from here, the TTL runs
    assert not reserve(store, MONDAY + timedelta(seconds=59), 100)
    assert reserve(store, MONDAY + timedelta(seconds=60), 100)  # not an hour and a minute on
    assert store.get_reserved("proj", "daily", MONDAY) == 100


def test_reservations_made_at_the_right_time_keep_their_ttl(store: BaseStore) -> None:
    assert reserve(store, MONDAY, 900, ttl_s=600.0)
    assert not reserve(store, MONDAY + timedelta(seconds=30), 200)
    # The refusal re-stamped nothing: it is held until its own expiry.
    assert not reserve(store, MONDAY + timedelta(seconds=599), 200)
    assert store.get_reserved("proj", "daily", MONDAY) == 900
    assert reserve(store, MONDAY + timedelta(seconds=600), 200)


# -- budget periods -----------------------------------------------------------------------------


def test_a_call_stamped_in_the_future_counts_in_the_current_period(store: BaseStore) -> None:
    before = datetime.now(timezone.utc)
    tomorrow = before + timedelta(days=1)
    state = store.record_call(make_call(10, at=tomorrow), BudgetSpec(1_000, "daily"))
    after = datetime.now(timezone.utc)
    current = {period_key("daily", before), period_key("daily", after)}  # midnight between
    assert state.period in current
    assert state.period != period_key("daily", tomorrow)
    written = before if state.period == period_key("daily", before) else after
    assert store.get_spent("proj", "daily", written) == 10
    assert store.get_spent("proj", "daily", tomorrow) == 0
    [row] = all_logs(store)
    assert row["created_at"] <= after.isoformat(timespec="microseconds")


def test_a_call_stamped_in_the_past_keeps_its_period(store: BaseStore) -> None:
    state = store.record_call(make_call(10, at=MONDAY), BudgetSpec(1_000, "daily"))
    assert state.period == period_key("daily", MONDAY)
