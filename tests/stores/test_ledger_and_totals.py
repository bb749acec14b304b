"""Every backend: record_call and get_spent, periods, thresholds, exact money."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from llm_toll._budget.periods import LIFETIME, Reset
from llm_toll._budget.records import BudgetSpec, BudgetState
from llm_toll.store import BaseStore
from llm_toll.usage._base import Usage
from tests.stores.conftest import (
    StoreFactory,
)
from tests.stores.helpers import (
    LOG_KEYS,
    MONDAY,
    all_logs,
    make_call,
)

# -- record_call and get_spent ----------------------------------------------------------------


def test_record_call_keeps_every_field_of_the_call(store: BaseStore) -> None:
    usage = Usage(
        input_tokens=1200,
        output_tokens=300,
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=100,
        reasoning_output_tokens=200,
        units={"cache_write_1h_tokens": 60, "web_searches": 2},
    )
    call = make_call(
        123_456_789,
        usage=usage,
        at=datetime(2026, 3, 2, 13, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1))),
        duration_s=1.5,
        provider="openai",
        operation="embeddings",
        price_known=False,
        estimated=True,
        response_id="resp-1",
        budget_key="team-a",
        price_source="genai-prices",
        price_version="0.2.3",
        unpriced_units=("web_searches",),
        price_context={"service_tier": "flex"},
        cost_source="provider",
        local_cost_nanos=120_000_000,
        run_id="run-1",
    )
    assert store.record_call(call) == BudgetState(123_456_789, None, LIFETIME)
    [row] = store.get_usage_logs("proj")
    assert row == {
        "id": 1,
        "project": "proj",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cost": 0.123456789,
        "created_at": "2026-03-02T12:00:00.250000+00:00",  # in UTC
        "provider": "openai",
        "operation": "embeddings",
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 100,
        "reasoning_output_tokens": 200,
        "price_known": False,
        "estimated": True,
        "budget_key": "team-a",
        "response_id": "resp-1",
        "duration_s": 1.5,
        "usage_units": {"cache_write_1h_tokens": 60, "web_searches": 2},
        "price_context": {"service_tier": "flex"},
        "price_source": "genai-prices",
        "price_version": "0.2.3",
        "unpriced_units": ["web_searches"],
        "cost_source": "provider",
        "local_cost": 0.12,
        "run_id": "run-1",
        "cost_nanos": 123_456_789,
        "local_cost_nanos": 120_000_000,
    }
    assert list(row) == LOG_KEYS


def test_a_call_without_units_context_or_provenance_stores_nulls(store: BaseStore) -> None:
    store.record_call(make_call(7))
    [row] = store.get_usage_logs("proj")
    assert {name: row[name] for name in LOG_KEYS[LOG_KEYS.index("usage_units") :]} == {
        "usage_units": None,
        "price_context": None,
        "price_source": None,
        "price_version": None,
        "unpriced_units": None,
        "cost_source": "local",
        "local_cost": None,
        "run_id": None,
        "cost_nanos": 7,
        "local_cost_nanos": None,
    }


def test_without_a_budget_the_lifetime_total_is_reported(store: BaseStore) -> None:
    first = store.record_call(make_call(700))
    second = store.record_call(make_call(300))
    assert first == BudgetState(700, None, LIFETIME)
    assert second == BudgetState(1_000, None, LIFETIME)
    assert store.get_spent("proj", None, MONDAY) == 1_000


def test_get_spent_of_an_unknown_project_is_zero(store: BaseStore) -> None:
    assert store.get_spent("nobody", None, MONDAY) == 0
    assert store.get_spent("nobody", "monthly", MONDAY) == 0


def test_projects_are_kept_apart(store: BaseStore) -> None:
    store.record_call(make_call(5, project="a"))
    store.record_call(make_call(7, project="b"))
    assert (store.get_spent("a", None, MONDAY), store.get_spent("b", None, MONDAY)) == (5, 7)


@pytest.mark.parametrize(
    ("reset", "start", "same_period", "next_period", "keys"),
    [
        (
            "daily",
            datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc),
            datetime(2026, 3, 2, 23, 59, 59, tzinfo=timezone.utc),
            datetime(2026, 3, 3, 0, 0, tzinfo=timezone.utc),
            ("2026-03-02", "2026-03-03"),
        ),
        (
            "weekly",  # ISO weeks: Monday to Sunday
            datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc),
            datetime(2026, 3, 8, 23, 59, tzinfo=timezone.utc),
            datetime(2026, 3, 9, 0, 0, tzinfo=timezone.utc),
            ("W2026-03-02", "W2026-03-09"),
        ),
        (
            "monthly",
            datetime(2026, 2, 1, 0, 0, tzinfo=timezone.utc),
            datetime(2026, 2, 28, 23, 59, tzinfo=timezone.utc),
            datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc),
            ("2026-02", "2026-03"),
        ),
    ],
)
def test_periods_roll_over_and_keep_history(
    store: BaseStore,
    reset: Reset,
    start: datetime,
    same_period: datetime,
    next_period: datetime,
    keys: tuple[str, str],
) -> None:
    budget = BudgetSpec(limit_nanos=10_000, reset=reset)
    states = [
        store.record_call(make_call(1_000, at=start), budget),
        store.record_call(make_call(2_000, at=same_period), budget),
        store.record_call(make_call(4_000, at=next_period), budget),
    ]
    assert [(s.period, s.spent_nanos, s.limit_nanos) for s in states] == [
        (keys[0], 1_000, 10_000),
        (keys[0], 3_000, 10_000),
        (keys[1], 4_000, 10_000),  # a new period starts from zero
    ]
    assert store.get_spent("proj", reset, same_period) == 3_000
    assert store.get_spent("proj", reset, next_period) == 4_000
    assert store.get_spent("proj", None, next_period) == 7_000  # the lifetime total goes on
    assert len(all_logs(store)) == 3  # the ledger keeps every call


def test_the_period_is_that_of_started_at_in_utc(store: BaseStore) -> None:
    # Monday 1 December 2025, 00:30 in UTC+02:00, is Sunday 30 November in UTC: the day, the
    # ISO week and the month all differ from the local ones. (In the past: a call stamped
    # in the future is recorded at the time of its write, see test_clocks.py.)
    started_at = datetime(2025, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    periods = {
        reset: store.record_call(make_call(10, at=started_at), BudgetSpec(100, reset)).period
        for reset in ("daily", "weekly", "monthly")
    }
    assert periods == {"daily": "2025-11-30", "weekly": "W2025-11-24", "monthly": "2025-11"}
    utc_evening = datetime(2025, 11, 30, 23, 0, tzinfo=timezone.utc)
    assert store.get_spent("proj", "daily", utc_evening) == 10
    assert store.get_spent("proj", "daily", started_at) == 10  # read back through UTC too
    assert store.get_spent("proj", "daily", datetime(2025, 12, 1, 12, tzinfo=timezone.utc)) == 0
    assert {row["created_at"] for row in all_logs(store)} == {"2025-11-30T22:30:00.000000+00:00"}


def test_thresholds_fire_once_per_period(store: BaseStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset="daily")
    day_one = [store.record_call(make_call(100), budget).crossed_thresholds for _ in range(12)]
    assert day_one == [(), (), (), (), (50,), (), (), (80,), (), (100,), (), ()]
    next_day = MONDAY + timedelta(days=1)
    big = store.record_call(make_call(900, at=next_day), budget)
    assert big.crossed_thresholds == (50, 80)  # one call can cross several
    assert store.record_call(make_call(100, at=next_day), budget).crossed_thresholds == (100,)
    assert store.record_call(make_call(100, at=next_day), budget).crossed_thresholds == ()


def test_thresholds_are_remembered_by_the_database(store_factory: StoreFactory) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    with store_factory() as store:
        assert store.record_call(make_call(600), budget).crossed_thresholds == (50,)
    with store_factory() as reopened:
        assert reopened.record_call(make_call(100), budget).crossed_thresholds == ()
        assert reopened.record_call(make_call(100), budget).crossed_thresholds == (80,)


@pytest.mark.parametrize("reset", [None, "monthly"])  # the lifetime total, a period's total
@pytest.mark.parametrize(("cost", "crossing_call"), [(300, 4), (250, 4), (1_000, 1)])
def test_exceeded_now_is_true_for_exactly_the_crossing_call(
    store: BaseStore, cost: int, crossing_call: int, reset: Reset | None
) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset=reset)
    flags = [store.record_call(make_call(cost), budget).exceeded_now for _ in range(6)]
    assert flags == [n == crossing_call for n in range(1, 7)]


def test_a_free_call_at_the_limit_does_not_count_as_crossing(store: BaseStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000)
    assert store.record_call(make_call(1_000), budget).exceeded_now
    assert not store.record_call(make_call(0), budget).exceeded_now


def test_a_budget_without_limit_reports_its_period(store: BaseStore) -> None:
    state = store.record_call(make_call(5), BudgetSpec(limit_nanos=None, reset="monthly"))
    assert state == BudgetState(5, None, "2026-03")
    state = store.record_call(make_call(6), BudgetSpec(limit_nanos=None))
    assert state == BudgetState(11, None, LIFETIME)


@pytest.mark.parametrize("limit_nanos", [None, 10**12])
def test_money_is_exact_over_many_calls(store: BaseStore, limit_nanos: int | None) -> None:
    # 2_000 x 0.1 USD summed as floats is not 200.0; the store keeps integers.
    calls = 2_000
    assert sum([0.1] * calls) != 200.0
    for _ in range(calls):
        store.log_usage("exact", "gpt-4o", 1, 1, 0.1)
    assert store.get_total_cost("exact") == 200.0
    assert store.get_spent("exact", None, MONDAY) == 200 * 10**9

    budget = BudgetSpec(limit_nanos=limit_nanos, reset="daily")
    for _ in range(calls):
        store.record_call(make_call(123, project="nanos"), budget)
    assert store.get_spent("nanos", "daily", MONDAY) == 123 * calls
    summaries = {row["project"]: row for row in store.get_all_project_summaries()}
    assert summaries["nanos"]["total_cost_nanos"] == 123 * calls
    assert summaries["exact"]["total_cost_nanos"] == 200 * 10**9
    assert summaries["exact"]["total_cost"] == 200.0


def test_amounts_up_to_the_largest_integer_are_exact(store: BaseStore) -> None:
    big = 2**62  # about 4.6 billion USD in nanos: beyond a double's exact integers
    store.record_call(make_call(big))
    assert store.record_call(make_call(1)).spent_nanos == big + 1
    assert store.get_spent("proj", None, MONDAY) == big + 1
    assert [row["cost_nanos"] for row in all_logs(store)] == [1, big]


def test_a_bad_record_is_refused_and_nothing_is_written(store: BaseStore) -> None:
    store.record_call(make_call(1))
    with pytest.raises(ValueError, match="cost_nanos"):
        store.record_call(make_call(0.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost_nanos"):
        store.record_call(make_call(2**63))
    with pytest.raises(ValueError, match="input_tokens"):
        store.record_call(make_call(1, usage=Usage(input_tokens=-1)))
    with pytest.raises(ValueError, match="unknown reset"):
        store.record_call(make_call(1), BudgetSpec(limit_nanos=5, reset="hourly"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit_nanos"):
        store.record_call(make_call(1), BudgetSpec(limit_nanos=2.5))  # type: ignore[arg-type]
    assert len(all_logs(store)) == 1
    assert store.get_spent("proj", None, MONDAY) == 1
