"""Per-tenant budgets through the decorator: ``budget_key=``, ``key_budget=``, metrics opt-in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from llm_toll import BudgetExceededError, default_registry, track_costs
from llm_toll.exceptions import UsageWarning
from llm_toll.store import SQLiteStore
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat


@pytest.fixture
def priced_model() -> str:
    """A model at exactly $1 per 1,000 input tokens."""
    name = "budget-key-test-model"
    default_registry.register_model(name, 0.001, 0.002)
    return name


@dataclass
class User:
    id: str


def user_id(user: User, *args: Any, **kwargs: Any) -> str:
    return user.id


def keyed_events(telemetry: Telemetry, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for s in telemetry.spans() for e in s.events if e.name == name]


def test_one_key_is_refused_while_the_other_and_the_project_go_on(
    store: SQLiteStore, telemetry: Telemetry, priced_model: str
) -> None:
    ran: list[str] = []

    @track_costs(
        project="keys-sync",
        max_budget=100.0,
        reset="daily",
        budget_key=user_id,
        key_budget=1.5,
    )
    def ask(user: User) -> dict[str, Any]:
        ran.append(user.id)
        return chat(1000, 0, model=priced_model)  # $1.00 a call

    alice, bob = User("alice"), User("bob")
    ask(alice)  # alice $1
    ask(alice)  # alice $2: crosses her $1.50, recorded and returned
    with pytest.raises(BudgetExceededError) as refused:
        ask(alice)
    assert refused.value.project == "keys-sync"
    assert refused.value.budget_key == "alice"
    assert "alice" in str(refused.value)
    assert refused.value.max_budget == pytest.approx(1.5)
    assert refused.value.current_cost == pytest.approx(2.0)
    ask(bob)  # bob has his own budget
    assert ran == ["alice", "alice", "bob"]

    assert store.get_total_cost("keys-sync") == pytest.approx(3.0)
    rows = {(r["budget_key"], r["period"] == "all"): r for r in store.get_budget_utilization()
            if r["project"] == "keys-sync"}  # fmt: skip
    assert rows[("alice", False)]["total_cost"] == pytest.approx(2.0)
    assert rows[("alice", False)]["limit"] == pytest.approx(1.5)
    assert rows[("bob", False)]["total_cost"] == pytest.approx(1.0)
    assert rows[("", False)]["total_cost"] == pytest.approx(3.0)
    assert rows[("", False)]["limit"] == pytest.approx(100.0)
    assert [r["budget_key"] for r in store.get_usage_logs("keys-sync")] == [
        "bob",
        "alice",
        "alice",
    ]

    spans = telemetry.requests()
    assert len(spans) == 4
    assert [(s.attributes or {}).get("llm_toll.budget.key") for s in spans] == [
        "alice",
        "alice",
        "alice",
        "bob",
    ]
    refusal = spans[2]
    assert (refusal.attributes or {})["error.type"] == "BudgetExceededError"
    [refusal_event] = [e for e in refusal.events if e.name == "llm_toll.budget.exceeded"]
    assert (refusal_event.attributes or {})["llm_toll.budget.key"] == "alice"
    assert (refusal_event.attributes or {})["llm_toll.project"] == "keys-sync"

    # The key's thresholds and the crossing call, each once, with the key on the event.
    thresholds = keyed_events(telemetry, "llm_toll.budget.threshold")
    assert [(e["llm_toll.budget.key"], e["llm_toll.budget.threshold"]) for e in thresholds] == [
        ("alice", 0.5),
        ("alice", 0.8),
        ("alice", 1.0),
        ("bob", 0.5),
    ]
    exceeded = keyed_events(telemetry, "llm_toll.budget.exceeded")
    assert [e.get("llm_toll.budget.key") for e in exceeded] == ["alice", "alice"]


def test_the_project_cap_still_refuses_every_key(store: SQLiteStore, priced_model: str) -> None:
    @track_costs(project="keys-cap", max_budget=2.0, budget_key=user_id, key_budget=10.0)
    def ask(user: User) -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    ask(User("a"))
    ask(User("b"))  # the project's $2 is spent
    for name in ("a", "b", "c"):
        with pytest.raises(BudgetExceededError) as refused:
            ask(User(name))
        assert refused.value.project == "keys-cap"
        assert refused.value.budget_key is None
        assert refused.value.max_budget == pytest.approx(2.0)


def test_calls_without_a_key_count_for_the_project_only(
    store: SQLiteStore, priced_model: str
) -> None:
    @track_costs(project="keys-none", budget_key=lambda user=None: user, key_budget=0.5)
    def ask(user: str | None = None) -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    ask()
    ask()  # no key: no key budget to spend
    ask("k")
    with pytest.raises(BudgetExceededError):
        ask("k")
    assert store.get_total_cost("keys-none") == pytest.approx(3.0)


async def test_async_keys_are_gated_with_costs_not_yet_written(
    store: SQLiteStore, priced_model: str
) -> None:
    ran: list[str] = []

    @track_costs(project="keys-async", reset="daily", budget_key=user_id, key_budget=2.0)
    async def ask(user: User) -> dict[str, Any]:
        ran.append(user.id)
        return chat(1000, 0, model=priced_model)

    await ask(User("x"))
    await ask(User("x"))  # the held cost of the first already counts
    with pytest.raises(BudgetExceededError) as refused:
        await ask(User("x"))
    assert refused.value.budget_key == "x"
    await ask(User("y"))
    assert ran == ["x", "x", "y"]
    results = await asyncio.gather(*(ask(User(f"g{i}")) for i in range(20)))
    assert len(results) == 20
    assert store.get_total_cost("keys-async") == pytest.approx(23.0)


def test_a_key_function_that_raises_warns_and_the_call_is_recorded_without_key(
    store: SQLiteStore, telemetry: Telemetry, priced_model: str
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise KeyError("no user")

    @track_costs(project="keys-broken", budget_key=broken, key_budget=0.0)
    def ask() -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    with pytest.warns(UsageWarning, match="budget_key"):
        assert ask()["model"] == priced_model
    ask()  # warned once
    [row, _] = store.get_usage_logs("keys-broken")
    assert row["budget_key"] is None
    spans = telemetry.requests()
    assert all("llm_toll.budget.key" not in (s.attributes or {}) for s in spans)


def test_a_key_function_returning_a_non_string_warns(store: SQLiteStore, priced_model: str) -> None:
    @track_costs(project="keys-int", budget_key=lambda n: n, key_budget=0.0)
    def ask(n: int) -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    with pytest.warns(UsageWarning, match="not a non-empty str"):
        ask(7)
    assert store.get_usage_logs("keys-int")[0]["budget_key"] is None


def test_metrics_carry_the_key_only_on_opt_in(
    store: SQLiteStore, telemetry: Telemetry, priced_model: str
) -> None:
    @track_costs(project="keys-metrics-off", max_budget=10.0, budget_key=user_id, key_budget=4.0)
    def quiet(user: User) -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    @track_costs(
        project="keys-metrics-on",
        max_budget=10.0,
        budget_key=user_id,
        key_budget=4.0,
        key_in_metrics=True,
    )
    def loud(user: User) -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    quiet(User("u1"))
    loud(User("u1"))
    loud(User("u2"))

    off = [p for p in telemetry.points("llm_toll.cost")
           if p.attributes["llm_toll.project"] == "keys-metrics-off"]  # fmt: skip
    assert off and all("llm_toll.budget.key" not in p.attributes for p in off)
    off_gauges = [p for p in telemetry.points("llm_toll.budget.utilization")
                  if p.attributes["llm_toll.project"] == "keys-metrics-off"]  # fmt: skip
    assert [dict(p.attributes) for p in off_gauges] == [
        {"llm_toll.project": "keys-metrics-off", "llm_toll.budget.period": "lifetime"}
    ]

    on = telemetry.sum_for(
        "llm_toll.cost", **{"llm_toll.project": "keys-metrics-on", "llm_toll.budget.key": "u1"}
    )
    assert on == pytest.approx(1.0)
    gauges = {p.attributes.get("llm_toll.budget.key"): p.value
              for p in telemetry.points("llm_toll.budget.utilization")
              if p.attributes["llm_toll.project"] == "keys-metrics-on"}  # fmt: skip
    assert gauges == {
        None: pytest.approx(0.2),
        "u1": pytest.approx(0.25),
        "u2": pytest.approx(0.25),
    }


def test_invalid_key_options_are_rejected_at_decoration() -> None:
    with pytest.raises(ValueError, match="key_budget needs budget_key"):
        track_costs(key_budget=1.0)
    with pytest.raises(ValueError, match="key_budget"):
        track_costs(budget_key=user_id, key_budget=-1)
    with pytest.raises(ValueError, match="key_budget"):
        track_costs(budget_key=user_id, key_budget=float("nan"))
    with pytest.raises(ValueError, match="budget_key"):
        track_costs(budget_key="user")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="key_in_metrics"):
        track_costs(budget_key=user_id, key_in_metrics="yes")  # type: ignore[call-overload]


def test_the_budget_view_forgets_stale_totals_of_many_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llm_toll._budget import view as processor

    clock = [100.0]
    monkeypatch.setattr(processor, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(processor, "VIEW_MAX_ENTRIES", 4)
    view = processor.BudgetView()
    for n in range(4):
        view.remember("p", "all", n, f"k{n}")
    clock[0] += 5  # all four are too old to be used now
    view.remember("p", "all", 9, "fresh")  # the fifth entry: a sweep
    assert view.recent("p", "all", "fresh") == 9
    assert len(view._totals) == 1
    ticket = view.hold("p", "all", 2, "fresh")
    assert (view.recent("p", "all", "fresh"), view.held("p", "all")) == (11, 2)
    view.release(ticket)
    assert view.recent("p", "all", "fresh") == 9
