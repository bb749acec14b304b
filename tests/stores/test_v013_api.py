"""Every backend: the llm-toll 0.13 store API, the store's life cycle and its failures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llm_toll._budget.records import BudgetSpec
from llm_toll.exceptions import BudgetExceededError
from llm_toll.store import BaseStore, StoreError, StoreWarning
from tests.stores.conftest import (
    StoreFactory,
)
from tests.stores.helpers import (
    BUDGET_KEYS,
    DAILY_KEYS,
    LOG_KEYS,
    MODEL_SUMMARY_KEYS,
    MONDAY,
    PROJECT_FOR_MODEL_KEYS,
    PROJECT_SUMMARY_KEYS,
    make_call,
)

# -- the llm-toll 0.13 API ------------------------------------------------------------------


def test_log_usage_and_get_total_cost(store: BaseStore) -> None:
    assert store.get_total_cost("chat") == 0.0
    store.log_usage("chat", "gpt-4o", 100, 20, 0.25)
    store.log_usage("chat", "gpt-4o-mini", 10, 2, 0.125)
    assert store.get_total_cost("chat") == 0.375
    rows = store.get_usage_logs("chat")
    assert [(r["model"], r["input_tokens"], r["output_tokens"], r["cost"]) for r in rows] == [
        ("gpt-4o-mini", 10, 2, 0.125),  # newest first
        ("gpt-4o", 100, 20, 0.25),
    ]
    assert all(r["price_known"] and r["operation"] == "chat" for r in rows)


def test_usage_logs_are_newest_first_and_limited(store: BaseStore) -> None:
    for hour in range(5):
        store.record_call(make_call(hour, at=MONDAY + timedelta(hours=hour)))
    store.record_call(make_call(99, project="other"))
    rows = store.get_usage_logs("proj", limit=3)
    assert [r["cost_nanos"] for r in rows] == [4, 3, 2]
    assert store.get_usage_logs("proj", limit=0) == []
    assert len(store.get_usage_logs("proj", limit=-1)) == 5
    # Calls of the same instant: the last recorded first.
    store.record_call(make_call(7, project="same"))
    store.record_call(make_call(8, project="same"))
    assert [r["cost_nanos"] for r in store.get_usage_logs("same")] == [8, 7]


def test_usage_logs_filtered(store: BaseStore) -> None:
    store.record_call(make_call(1, project="a", model="m1"))
    store.record_call(make_call(2, project="a", model="m2"))
    store.record_call(make_call(3, project="b", model="m1"))

    def costs(**filters: Any) -> list[int]:
        return sorted(r["cost_nanos"] for r in store.get_usage_logs_filtered(**filters))

    assert costs() == [1, 2, 3]
    assert costs(project="a") == [1, 2]
    assert costs(model="m1") == [1, 3]
    assert costs(project="a", model="m1") == [1]
    assert costs(project="nobody") == []
    assert len(store.get_usage_logs_filtered(limit=2)) == 2
    assert len(store.get_usage_logs_filtered(limit=0)) == 3  # 0 means all
    assert len(store.get_usage_logs_filtered(limit=-5)) == 3
    assert all(list(row) == LOG_KEYS for row in store.get_usage_logs_filtered())


def test_summaries_by_project_and_model(store: BaseStore) -> None:
    store.record_call(make_call(100_000_000, project="a", model="m1", at=MONDAY))
    store.record_call(make_call(300_000_000, project="a", model="m2", at=MONDAY))
    store.record_call(
        make_call(50_000_000, project="b", model="m1", at=MONDAY + timedelta(hours=3))
    )
    projects = store.get_all_project_summaries()
    assert projects == [
        {
            "project": "a",
            "total_cost": 0.4,
            "total_input_tokens": 20,
            "total_output_tokens": 10,
            "call_count": 2,
            "last_used": "2026-03-02T12:00:00.000000+00:00",
            "total_cost_nanos": 400_000_000,
        },
        {
            "project": "b",
            "total_cost": 0.05,
            "total_input_tokens": 10,
            "total_output_tokens": 5,
            "call_count": 1,
            "last_used": "2026-03-02T15:00:00.000000+00:00",
            "total_cost_nanos": 50_000_000,
        },
    ]
    assert all(list(row) == PROJECT_SUMMARY_KEYS for row in projects)

    models = store.get_model_summaries()
    assert [(m["model"], m["total_cost"], m["call_count"]) for m in models] == [
        ("m2", 0.3, 1),
        ("m1", 0.15, 2),
    ]
    assert models[1]["total_cost_nanos"] == 150_000_000
    assert models[1]["total_input_tokens"] == 20
    assert [m["model"] for m in store.get_model_summaries(project="b")] == ["m1"]
    assert store.get_model_summaries(project="nobody") == []
    by_project = store.get_project_summaries_for_model("m1")
    assert [(p["project"], p["total_cost"]) for p in by_project] == [("a", 0.1), ("b", 0.05)]
    assert all(list(row) == MODEL_SUMMARY_KEYS for row in models)
    assert all(list(row) == PROJECT_FOR_MODEL_KEYS for row in by_project)


def test_reports_sort_ties_by_name_bytewise(store: BaseStore) -> None:
    for project in ("b", "B", "a", "_"):
        store.record_call(make_call(10, project=project, model=f"m-{project}"))
    assert [p["project"] for p in store.get_all_project_summaries()] == ["B", "_", "a", "b"]
    assert [m["model"] for m in store.get_model_summaries()] == ["m-B", "m-_", "m-a", "m-b"]


def test_daily_cost_trends_cover_the_last_days(store: BaseStore) -> None:
    now = datetime.now(timezone.utc)
    store.record_call(make_call(1_000_000, at=now - timedelta(days=2)))
    store.record_call(make_call(2_000_000, at=now - timedelta(days=2)))
    store.record_call(make_call(4_000_000, at=now - timedelta(days=1)))
    store.record_call(make_call(8_000_000, at=now - timedelta(days=40)))
    trends = store.get_daily_cost_trends(days=30)
    assert trends == [
        {
            "date": (now - timedelta(days=2)).strftime("%Y-%m-%d"),
            "daily_cost": 0.003,
            "daily_input_tokens": 20,
            "daily_output_tokens": 10,
            "call_count": 2,
            "daily_cost_nanos": 3_000_000,
        },
        {
            "date": (now - timedelta(days=1)).strftime("%Y-%m-%d"),
            "daily_cost": 0.004,
            "daily_input_tokens": 10,
            "daily_output_tokens": 5,
            "call_count": 1,
            "daily_cost_nanos": 4_000_000,
        },
    ]
    assert all(list(row) == DAILY_KEYS for row in trends)
    assert len(store.get_daily_cost_trends(days=60)) == 3


def test_budget_utilization_per_project_and_period(store: BaseStore) -> None:
    store.record_call(make_call(250_000_000, project="a"), BudgetSpec(10**9, "daily"))
    store.log_usage("b", "m", 1, 1, 0.5)
    rows = store.get_budget_utilization()
    view = {
        (r["project"], r["period"]): (
            r["total_cost"],
            r["limit"],
            r["utilization"],
            r["thresholds_fired"],
            r["total_cost_nanos"],
            r["limit_nanos"],
        )
        for r in rows
    }
    assert view == {
        ("b", "all"): (0.5, None, None, 0, 500_000_000, None),
        ("a", "all"): (0.25, None, None, 0, 250_000_000, None),
        ("a", "2026-03-02"): (0.25, 1.0, 0.25, 0, 250_000_000, 10**9),
    }
    assert [(r["project"], r["period"]) for r in rows] == [
        ("b", "all"),  # costliest first, then by project and period
        ("a", "2026-03-02"),
        ("a", "all"),
    ]
    for row in rows:
        assert list(row) == BUDGET_KEYS
        assert row["last_reset_at"] is None
        assert datetime.fromisoformat(row["updated_at"]).tzinfo is not None


def test_reset_budget_zeroes_totals_and_keeps_the_ledger(store: BaseStore) -> None:
    budget = BudgetSpec(limit_nanos=1_000, reset="daily")
    assert store.record_call(make_call(900), budget).crossed_thresholds == (50, 80)
    store.record_call(make_call(5, project="other"))
    store.reset_budget("proj")
    store.reset_budget("nobody")  # nothing to reset: no error
    assert store.get_total_cost("proj") == 0.0
    assert store.get_spent("proj", "daily", MONDAY) == 0
    assert store.get_spent("other", None, MONDAY) == 5  # other projects untouched
    assert len(store.get_usage_logs("proj")) == 1
    reset_rows = [r for r in store.get_budget_utilization() if r["project"] == "proj"]
    assert len(reset_rows) == 2
    assert all(r["last_reset_at"] is not None and r["thresholds_fired"] == 0 for r in reset_rows)
    again = store.record_call(make_call(900), budget)
    assert (again.spent_nanos, again.crossed_thresholds) == (900, (50, 80))  # fire again


def test_log_usage_if_within_budget_records_every_call(store: BaseStore) -> None:
    totals = [store.log_usage_if_within_budget("b", "m", 1, 1, 0.4, 1.0) for _ in range(3)]
    assert totals == [0.4, 0.8, 1.2]  # the crossing call is recorded and returns
    with pytest.raises(BudgetExceededError) as refused:
        store.log_usage_if_within_budget("b", "m", 1, 1, 0.4, 1.0)
    assert (refused.value.project, refused.value.max_budget) == ("b", 1.0)
    assert refused.value.current_cost == 1.6
    assert store.get_total_cost("b") == 1.6  # recorded all the same: the money is spent
    assert len(store.get_usage_logs("b")) == 4
    [row] = [r for r in store.get_budget_utilization() if r["project"] == "b"]
    assert (row["limit"], row["utilization"]) == (1.0, 1.6)


def test_bad_compat_arguments_warn_and_lose_nothing(store: BaseStore) -> None:
    with pytest.warns(StoreWarning, match="not a non-negative amount") as caught:
        store.log_usage("p", "m", 10, 5, float("nan"))
    assert caught[0].filename == __file__  # points at the caller
    with pytest.warns(StoreWarning, match="bad token counts"):
        store.log_usage("p", "m", -3, 5, 0.5)
    with pytest.warns(StoreWarning, match="max_budget"):
        assert store.log_usage_if_within_budget("p", "m", 1, 1, 0.25, float("inf")) == 0.75
    rows = store.get_usage_logs("p")
    assert [(r["cost"], r["price_known"], r["input_tokens"]) for r in rows] == [
        (0.25, True, 1),
        (0.5, True, 0),
        (0.0, False, 10),
    ]


def test_close_is_idempotent_and_the_store_reopens(store: BaseStore) -> None:
    store.log_usage("p", "m", 1, 1, 1.0)
    store.close()
    store.close()
    assert store.get_total_cost("p") == 1.0  # opened again on demand
    store.log_usage("p", "m", 1, 1, 1.0)
    store.close()
    assert store.get_total_cost("p") == 2.0


def test_stores_on_one_database_see_each_other(store_factory: StoreFactory) -> None:
    first, second = store_factory(), store_factory()
    first.record_call(make_call(10))
    assert second.record_call(make_call(5)).spent_nanos == 15
    assert first.get_spent("proj", None, MONDAY) == 15


def test_reads_wait_for_writes_in_flight_and_record_call_does_not(store: BaseStore) -> None:
    waited: list[str] = []
    store.set_write_barrier(lambda: waited.append("barrier"))
    store.record_call(make_call(1))
    store.log_usage("proj", "m", 1, 1, 0.5)  # a write: it is what the barrier waits for
    assert waited == []
    reads: list[Callable[[], object]] = [
        lambda: store.get_spent("proj", None, MONDAY),
        lambda: store.get_total_cost("proj"),
        lambda: store.get_usage_logs("proj"),
        lambda: store.get_usage_logs_filtered(),
        lambda: store.get_all_project_summaries(),
        lambda: store.get_model_summaries(),
        lambda: store.get_project_summaries_for_model("m"),
        lambda: store.get_daily_cost_trends(),
        lambda: store.get_budget_utilization(),
        lambda: store.reset_budget("proj"),
    ]
    for count, read in enumerate(reads, start=1):
        read()
        assert len(waited) == count
    store.set_write_barrier(None)


# -- failures -------------------------------------------------------------------------------


def test_an_unreachable_database_is_a_store_error_or_a_warning(
    store_factory: StoreFactory,
) -> None:
    broken = store_factory.unreachable()
    failed = r"^llm_toll store \S+: could not \w+"  # the database, then what failed and why
    with pytest.raises(StoreError, match=failed) as failure:
        broken.record_call(make_call())
    assert failure.value.path is not None
    assert str(failure.value).startswith(f"llm_toll store {failure.value.path}: ")
    with pytest.raises(StoreError, match=failed):
        broken.record_call(make_call(), BudgetSpec(10, "daily"))
    with pytest.raises(StoreError, match=failed):
        broken.get_spent("proj", "daily", MONDAY)

    # The llm-toll 0.13 API warns and answers with a neutral value, as 0.13 never raised.
    with pytest.warns(StoreWarning, match=failed):
        broken.log_usage("proj", "m", 1, 1, 0.5)
    with pytest.warns(StoreWarning, match=failed):
        assert broken.log_usage_if_within_budget("proj", "m", 1, 1, 0.5, 1.0) == 0.0
    with pytest.warns(StoreWarning, match=failed):
        assert broken.get_total_cost("proj") == 0.0
    with pytest.warns(StoreWarning, match=failed):
        broken.reset_budget("proj")
    reads: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: broken.get_usage_logs("proj"),
        lambda: broken.get_usage_logs_filtered(),
        lambda: broken.get_all_project_summaries(),
        lambda: broken.get_model_summaries(),
        lambda: broken.get_model_summaries(project="proj"),
        lambda: broken.get_project_summaries_for_model("m"),
        lambda: broken.get_daily_cost_trends(),
        lambda: broken.get_budget_utilization(),
    ]
    for read in reads:
        with pytest.warns(StoreWarning, match=failed) as caught:
            assert read() == []
        assert caught[0].filename == __file__  # points at the caller
    broken.close()
    broken.close()
