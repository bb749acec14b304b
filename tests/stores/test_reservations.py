"""Every backend: strict budgets' reservations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from llm_toll._budget.records import BudgetSpec, BudgetState
from llm_toll.store import BaseStore
from tests.stores.helpers import (
    DAILY,
    MONDAY,
    TTL_S,
    all_logs,
    keyed,
    make_call,
)

# -- strict budgets: reservations -------------------------------------------------------------


def test_reserve_settle_and_release_arithmetic(store: BaseStore) -> None:
    first = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=300, ttl_s=TTL_S
    )
    second = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=200, ttl_s=TTL_S
    )
    assert first is not None and second is not None
    assert first.id != second.id
    assert (first.period, first.amount_nanos, first.budget_key) == ("2026-03-02", 300, None)
    assert first.expires_at == MONDAY + timedelta(seconds=TTL_S)
    assert store.get_reserved("proj", "daily", MONDAY) == 500
    assert store.get_spent("proj", "daily", MONDAY) == 0

    # Settled to the actual cost: recorded like record_call, reservation released at once.
    state = store.settle_reservation(first, make_call(120))
    assert state == BudgetState(120, 1_000, "2026-03-02")
    assert store.get_reserved("proj", "daily", MONDAY) == 200
    assert store.get_spent("proj", "daily", MONDAY) == 120
    assert store.get_spent("proj", None, MONDAY) == 120
    assert len(all_logs(store)) == 1

    store.release_reservation(second)
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    # Releasing or settling again never releases twice; a late settlement still records.
    store.release_reservation(second)
    store.release_reservation(first)
    assert store.settle_reservation(second, make_call(5)).spent_nanos == 125
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    assert len(all_logs(store)) == 2


def test_reserve_refuses_what_does_not_fit(store: BaseStore) -> None:
    store.record_call(make_call(400), DAILY)
    held = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=500, ttl_s=TTL_S
    )
    assert held is not None
    # spent 400 + reserved 500 + 101 > 1000, though spent alone is far under the limit.
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=101, ttl_s=TTL_S)
        is None
    )
    exact = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=100, ttl_s=TTL_S
    )  # exactly at the limit
    assert exact is not None
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=0, ttl_s=TTL_S)
        is not None
    )  # nothing to add
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=1, ttl_s=TTL_S)
        is None
    )
    assert store.get_reserved("proj", "daily", MONDAY) == 600
    # A refusal writes no reservation; another day is another period.
    assert store.reserve(
        "proj",
        budget_key=None,
        spec=DAILY,
        at=MONDAY + timedelta(days=1),
        amount_nanos=1_000,
        ttl_s=TTL_S,
    )
    # A spec without a limit never refuses.
    assert store.reserve(
        "other",
        budget_key=None,
        spec=BudgetSpec(None, "daily"),
        at=MONDAY,
        amount_nanos=10**15,
        ttl_s=TTL_S,
    )


def test_reservations_of_a_budget_key(store: BaseStore) -> None:
    key_spec = BudgetSpec(300, "daily")
    held = store.reserve(
        "proj",
        budget_key="k",
        spec=DAILY,
        at=MONDAY,
        amount_nanos=250,
        ttl_s=TTL_S,
        key_spec=key_spec,
    )
    assert held is not None and held.budget_key == "k"
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 250
    assert store.get_reserved("proj", "daily", MONDAY) == 250
    # The key's limit refuses; another key and the project go on.
    assert (
        store.reserve(
            "proj",
            budget_key="k",
            spec=DAILY,
            at=MONDAY,
            amount_nanos=51,
            ttl_s=TTL_S,
            key_spec=key_spec,
        )
        is None
    )
    other = store.reserve(
        "proj",
        budget_key="j",
        spec=DAILY,
        at=MONDAY,
        amount_nanos=51,
        ttl_s=TTL_S,
        key_spec=key_spec,
    )
    assert other is not None
    state = store.settle_reservation(held, keyed(200, "k"))
    assert state.spent_nanos == 200
    assert state.key_state == BudgetState(200, 300, "2026-03-02", (50,), False)
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 0
    assert store.get_reserved("proj", "daily", MONDAY) == 51
    store.release_reservation(other)
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="j") == 0
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    with pytest.raises(ValueError, match="reset"):
        store.reserve(
            "proj",
            budget_key="k",
            spec=DAILY,
            at=MONDAY,
            amount_nanos=1,
            ttl_s=TTL_S,
            key_spec=BudgetSpec(300, "monthly"),
        )
    with pytest.raises(ValueError, match="amount_nanos"):
        store.reserve("proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=-1, ttl_s=TTL_S)


def test_expired_reservations_are_reclaimed_by_the_next_reserve(store: BaseStore) -> None:
    key_spec = BudgetSpec(1_000, "daily")
    crashed = store.reserve(
        "proj",
        budget_key="k",
        spec=DAILY,
        at=MONDAY,
        amount_nanos=600,
        ttl_s=30.0,
        key_spec=key_spec,
    )
    alive = store.reserve(
        "proj", budget_key=None, spec=DAILY, at=MONDAY, amount_nanos=300, ttl_s=3600.0
    )
    assert crashed is not None and alive is not None
    assert (
        store.reserve(
            "proj",
            budget_key=None,
            spec=DAILY,
            at=MONDAY + timedelta(seconds=29),
            amount_nanos=200,
            ttl_s=60.0,
        )
        is None
    )
    # At its expiry the crashed process's reservation is given back, the live one kept.
    later = MONDAY + timedelta(seconds=30)
    assert (
        store.reserve("proj", budget_key=None, spec=DAILY, at=later, amount_nanos=200, ttl_s=60.0)
        is not None
    )
    assert store.get_reserved("proj", "daily", MONDAY) == 500
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 0
    # The crashed call's late settlement records its cost and releases nothing twice.
    store.settle_reservation(crashed, keyed(100, "k"))
    assert store.get_reserved("proj", "daily", MONDAY) == 500
    assert store.get_spent("proj", "daily", MONDAY, budget_key="k") == 100


# A lifetime limit in code with a daily limit kept in the store (``_budget.limits.combine``).
LIFETIME_AND_DAILY = BudgetSpec(10_000, None, also=(BudgetSpec(1_000, "daily"),))


def test_a_reservation_holds_every_period_or_none(store: BaseStore) -> None:
    two_days = 2 * 86_400.0  # held into the next day
    held = store.reserve(
        "proj", budget_key=None, spec=LIFETIME_AND_DAILY, at=MONDAY, amount_nanos=700,
        ttl_s=two_days,
    )  # fmt: skip
    assert held is not None and held.period == "all"
    assert [period for _, period in held.others] == ["2026-03-02"]
    assert store.get_reserved("proj", None, MONDAY) == 700
    assert store.get_reserved("proj", "daily", MONDAY) == 700
    # The lifetime limit has room for 400 more, the daily one not: refused, nothing held.
    assert (
        store.reserve(
            "proj",
            budget_key=None,
            spec=LIFETIME_AND_DAILY,
            at=MONDAY,
            amount_nanos=400,
            ttl_s=TTL_S,
        )
        is None
    )
    assert store.get_reserved("proj", None, MONDAY) == 700
    # The next day is another daily period: only the lifetime limit holds what is in flight.
    tuesday = MONDAY + timedelta(days=1)
    next_day = store.reserve(
        "proj", budget_key=None, spec=LIFETIME_AND_DAILY, at=tuesday, amount_nanos=900, ttl_s=TTL_S
    )
    assert next_day is not None
    assert store.get_reserved("proj", None, MONDAY) == 1_600
    assert store.get_reserved("proj", "daily", tuesday) == 900

    # Settled: recorded in both periods, every row of the reservation released once.
    state = store.settle_reservation(held, make_call(600))
    assert (state.spent_nanos, state.limit_nanos, state.period) == (600, 1_000, "2026-03-02")
    store.release_reservation(next_day)
    store.release_reservation(held)
    assert store.get_reserved("proj", None, MONDAY) == 0
    assert store.get_reserved("proj", "daily", MONDAY) == 0
    assert store.get_reserved("proj", "daily", tuesday) == 0
    assert store.get_spent("proj", "daily", MONDAY) == 600
    assert store.get_spent("proj", None, MONDAY) == 600


def test_a_keyed_reservation_holds_the_periods_of_the_keys_limits(store: BaseStore) -> None:
    spec = BudgetSpec(None, None, also=(BudgetSpec(None, "daily"),))
    key_spec = BudgetSpec(None, None, also=(BudgetSpec(500, "daily"),))
    held = store.reserve(
        "proj", budget_key="k", spec=spec, at=MONDAY, amount_nanos=400, ttl_s=TTL_S,
        key_spec=key_spec,
    )  # fmt: skip
    assert held is not None
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 400
    again = store.reserve(
        "proj", budget_key="k", spec=spec, at=MONDAY, amount_nanos=200, ttl_s=TTL_S,
        key_spec=key_spec,
    )  # fmt: skip
    assert again is None  # the key's daily limit, kept over a period the code has none of
    assert store.get_reserved("proj", "daily", MONDAY) == 400
    store.release_reservation(held)
    assert store.get_reserved("proj", "daily", MONDAY, budget_key="k") == 0
    assert store.get_reserved("proj", None, MONDAY) == 0
    # The project's reservation must hold every period the key's does.
    with pytest.raises(ValueError, match="reset period"):
        store.reserve(
            "proj", budget_key="k", spec=BudgetSpec(None, None), at=MONDAY, amount_nanos=1,
            ttl_s=TTL_S, key_spec=key_spec,
        )  # fmt: skip


def test_expired_reservations_of_every_period_are_reclaimed(store: BaseStore) -> None:
    crashed = store.reserve(
        "proj", budget_key=None, spec=LIFETIME_AND_DAILY, at=MONDAY, amount_nanos=800, ttl_s=30.0
    )
    assert crashed is not None
    later = MONDAY + timedelta(seconds=30)
    after = store.reserve(
        "proj", budget_key=None, spec=LIFETIME_AND_DAILY, at=later, amount_nanos=900, ttl_s=TTL_S
    )
    assert after is not None
    assert store.get_reserved("proj", None, MONDAY) == 900
    assert store.get_reserved("proj", "daily", MONDAY) == 900
