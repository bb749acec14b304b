"""Every backend: running totals per budget key (per-tenant budgets)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from llm_toll._budget.periods import LIFETIME
from llm_toll._budget.records import BudgetSpec, BudgetState
from llm_toll.store import BaseStore
from llm_toll.store._sql import SQLStore
from tests.stores.conftest import (
    StoreFactory,
)
from tests.stores.helpers import (
    BUDGET_KEYS,
    MONDAY,
    all_logs,
    keyed,
)

# -- budget keys (per-tenant budgets) ---------------------------------------------------------


def test_budget_keys_are_kept_apart_from_each_other_and_from_the_project(
    store: BaseStore,
) -> None:
    budget = BudgetSpec(10_000, "daily")
    key_budget = BudgetSpec(1_000, "daily")
    first = store.record_call(keyed(300, "alice"), budget, key_budget)
    assert first == BudgetState(
        300, 10_000, "2026-03-02", key_state=BudgetState(300, 1_000, "2026-03-02")
    )
    store.record_call(keyed(200, "bob"), budget, key_budget)
    store.record_call(keyed(50, None), budget, key_budget)  # no key: the project only
    store.record_call(keyed(7, "carol"), budget)  # no key budget: ledger only
    state = store.record_call(keyed(400, "alice"), budget, key_budget)
    assert (state.spent_nanos, state.key_state) == (
        957,
        BudgetState(700, 1_000, "2026-03-02", (50,)),
    )
    assert store.get_spent("proj", "daily", MONDAY) == 957
    assert store.get_spent("proj", "daily", MONDAY, budget_key="alice") == 700
    assert store.get_spent("proj", "daily", MONDAY, budget_key="bob") == 200
    assert store.get_spent("proj", None, MONDAY, budget_key="alice") == 700  # lifetime too
    assert store.get_spent("proj", "daily", MONDAY, budget_key="carol") == 0
    assert store.get_spent("other", "daily", MONDAY, budget_key="alice") == 0
    assert store.get_total_cost("proj") == 957 / 1e9
    assert [r["budget_key"] for r in all_logs(store)] == ["alice", "carol", None, "bob", "alice"]

    rows = store.get_budget_utilization()
    view = {
        (r["budget_key"], r["period"]): (r["total_cost_nanos"], r["limit_nanos"], r["utilization"])
        for r in rows
    }
    assert view == {
        ("", "all"): (957, None, None),
        ("", "2026-03-02"): (957, 10_000, 957 / 10_000),
        ("alice", "all"): (700, None, None),
        ("alice", "2026-03-02"): (700, 1_000, 0.7),
        ("bob", "all"): (200, None, None),
        ("bob", "2026-03-02"): (200, 1_000, 0.2),
    }
    for row in rows:
        assert list(row) == BUDGET_KEYS


def test_budget_keys_have_their_own_periods_and_thresholds(store: BaseStore) -> None:
    budget = BudgetSpec(None, "daily")
    key_budget = BudgetSpec(100, "daily")
    tuesday = MONDAY + timedelta(days=1)
    states = [
        store.record_call(keyed(cost, key, at=at), budget, key_budget)
        for cost, key, at in [
            (60, "a", MONDAY),
            (60, "b", MONDAY),
            (30, "a", MONDAY),
            (20, "a", MONDAY),
            (60, "a", tuesday),
        ]
    ]
    key_states = [state.key_state for state in states]
    assert [(k.spent_nanos, k.crossed_thresholds, k.exceeded_now) for k in key_states if k] == [
        (60, (50,), False),
        (60, (50,), False),  # b's thresholds are b's own
        (90, (80,), False),
        (110, (100,), True),
        (60, (50,), False),  # a new period fires again
    ]
    assert [k.period for k in key_states if k] == ["2026-03-02"] * 4 + ["2026-03-03"]
    assert all(state.limit_nanos is None for state in states)  # the project has no limit
    assert store.get_spent("proj", "daily", MONDAY, budget_key="a") == 110
    assert store.get_spent("proj", "daily", tuesday, budget_key="a") == 60
    assert store.get_spent("proj", None, tuesday, budget_key="a") == 170
    assert store.get_spent("proj", "daily", MONDAY) == 170


def test_thresholds_of_budget_keys_are_remembered_by_the_database(
    store_factory: StoreFactory,
) -> None:
    key_budget = BudgetSpec(100, None)
    with store_factory() as store:
        state = store.record_call(keyed(60, "k"), None, key_budget)
        assert state == BudgetState(
            60, None, LIFETIME, key_state=BudgetState(60, 100, "all", (50,))
        )
    with store_factory() as store:
        state = store.record_call(keyed(30, "k"), None, key_budget)
        assert state.key_state == BudgetState(90, 100, "all", (80,))


def test_reset_budget_resets_the_keys_of_the_project(store: BaseStore) -> None:
    key_budget = BudgetSpec(100, "daily")
    store.record_call(keyed(90, "k"), BudgetSpec(1_000, "daily"), key_budget)
    store.record_call(keyed(90, "k", project="other"), None, key_budget)
    store.reset_budget("proj")
    assert store.get_spent("proj", "daily", MONDAY, budget_key="k") == 0
    assert store.get_spent("proj", None, MONDAY, budget_key="k") == 0
    assert store.get_spent("other", "daily", MONDAY, budget_key="k") == 90
    again = store.record_call(keyed(90, "k"), BudgetSpec(1_000, "daily"), key_budget)
    assert again.key_state == BudgetState(90, 100, "2026-03-02", (50, 80))


def test_a_bad_key_budget_is_refused_and_nothing_is_written(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="limit_nanos"):
        store.record_call(keyed(1, "k"), None, BudgetSpec(-1))
    assert all_logs(store) == []


def test_reset_budget_narrowed_to_one_key(store: BaseStore) -> None:
    assert isinstance(store, SQLStore)  # the narrowed reset of both built-in stores
    budget, key_budget = BudgetSpec(1_000, "daily"), BudgetSpec(100, "daily")
    store.record_call(keyed(60, "a"), budget, key_budget)
    store.record_call(keyed(40, "b"), budget, key_budget)
    store.reset_budget("proj", budget_key="a")
    assert store.get_spent("proj", "daily", MONDAY, budget_key="a") == 0
    assert store.get_spent("proj", None, MONDAY, budget_key="a") == 0
    assert store.get_spent("proj", "daily", MONDAY, budget_key="b") == 40
    assert store.get_spent("proj", "daily", MONDAY) == 100  # the project's own stay
    again = store.record_call(keyed(60, "a"), budget, key_budget)
    assert again.key_state == BudgetState(60, 100, "2026-03-02", (50,))  # fired again


def test_reset_budget_narrowed_to_one_period(store: BaseStore) -> None:
    assert isinstance(store, SQLStore)
    budget = BudgetSpec(1_000, "daily")
    tuesday = MONDAY + timedelta(days=1)
    store.record_call(keyed(60, "a"), budget, budget)
    store.record_call(keyed(30, "a", at=tuesday), budget, budget)
    store.reset_budget("proj", period="2026-03-02")
    assert store.get_spent("proj", "daily", MONDAY) == 0
    assert store.get_spent("proj", "daily", MONDAY, budget_key="a") == 0
    assert store.get_spent("proj", "daily", tuesday) == 30
    assert store.get_spent("proj", None, MONDAY) == 90  # lifetime totals are another period
    store.reset_budget("proj", budget_key="", period=LIFETIME)
    assert store.get_spent("proj", None, MONDAY) == 0
    assert store.get_spent("proj", None, MONDAY, budget_key="a") == 90
