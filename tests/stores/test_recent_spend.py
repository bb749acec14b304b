"""Every backend: the ledger's spend since a time (the burn rate of forecasts)."""

from __future__ import annotations

from datetime import timedelta

from llm_toll._budget.forecast import forecast_budget
from llm_toll._budget.records import BudgetSpec
from llm_toll.store import BaseStore
from tests.stores.conftest import StoreFactory
from tests.stores.helpers import MONDAY, keyed, make_call

HOUR_AGO = MONDAY - timedelta(hours=1)


def test_spend_since_counts_the_rows_from_then_of_one_project_or_key(store: BaseStore) -> None:
    store.record_call(make_call(1, at=HOUR_AGO - timedelta(microseconds=1)))  # just before
    store.record_call(make_call(20, at=HOUR_AGO))  # the boundary itself counts
    store.record_call(keyed(300, "alice", at=MONDAY - timedelta(minutes=5)))
    store.record_call(keyed(4_000, "bob", at=MONDAY))
    store.record_call(make_call(50_000, project="other", at=MONDAY))

    assert store.get_spent_since("proj", HOUR_AGO) == 4_320
    assert store.get_spent_since("proj", HOUR_AGO, budget_key="alice") == 300
    assert store.get_spent_since("proj", HOUR_AGO, budget_key="nobody") == 0
    assert store.get_spent_since("proj", MONDAY + timedelta(seconds=1)) == 0
    assert store.get_spent_since("unknown", HOUR_AGO) == 0


def test_every_process_sharing_the_store_forecasts_the_same(
    store_factory: StoreFactory,
) -> None:
    """The ledger is the fleet's: what another process (another store on the same
    database) spent counts in this one's burn rate."""
    budget = BudgetSpec(10_000, "daily")
    here, there = store_factory(), store_factory()
    here.record_call(make_call(1_000, at=MONDAY - timedelta(minutes=30)), budget)
    there.record_call(make_call(2_000, at=MONDAY - timedelta(minutes=10)), budget)

    figures = [
        forecast_budget(s, "proj", limit_nanos=10_000, reset="daily", now=MONDAY)
        for s in (here, there)
    ]
    assert figures[0] == figures[1]
    # 7,000 left at 3,000 an hour: 8,400 s, before the day ends (at noon, 12 h away).
    assert (figures[0].spent_nanos, figures[0].window_spent_nanos) == (3_000, 3_000)
    assert (figures[0].seconds_left, figures[0].runs_out) == (8_400.0, True)
