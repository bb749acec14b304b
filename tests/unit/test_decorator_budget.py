"""Budgets through the decorator: refusal before spend, the crossing call, events, metrics."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest

import llm_toll
from llm_toll import (
    BudgetExceededError,
    LocalRateLimitError,
    PricingMatrixOutdatedWarning,
    _runtime,
    default_registry,
    track_costs,
)
from llm_toll._budget.money import usd_to_nanos
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import BaseStore, SQLiteStore
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat


@pytest.fixture
def priced_model() -> str:
    """A model at exactly $1 per 1,000 input tokens and $2 per 1,000 output tokens."""
    name = "budget-test-model"
    default_registry.register_model(name, 0.001, 0.002)
    return name


class Store013(BaseStore):
    """A custom store written for llm-toll 0.13: its methods only, over a list."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int, int, float]] = []
        self.closed = False
        self.down = False

    def log_usage(
        self, project: str, model: str, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        if self.down:
            raise RuntimeError("the store is down")
        self.rows.append((project, model, input_tokens, output_tokens, cost))

    def log_usage_if_within_budget(self, *args: Any, **kwargs: Any) -> float:
        raise NotImplementedError

    def get_total_cost(self, project: str) -> float:
        if self.down:
            raise RuntimeError("the store is down")
        return sum(row[4] for row in self.rows if row[0] == project)

    def get_usage_logs(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    get_usage_logs_filtered = get_all_project_summaries = get_model_summaries = get_usage_logs
    get_project_summaries_for_model = get_daily_cost_trends = get_usage_logs
    get_budget_utilization = get_usage_logs

    def reset_budget(self, project: str) -> None:
        self.rows = [row for row in self.rows if row[0] != project]

    def close(self) -> None:
        self.closed = True


def test_a_store_written_for_0_13_records_and_enforces_lifetime_budgets(
    priced_model: str,
) -> None:
    store = Store013()
    llm_toll.set_store(store)
    try:

        @track_costs(project="old-store", max_budget=2.5)
        def ask() -> dict[str, Any]:
            return chat(1000, 0, model=priced_model)  # $1.00 a call

        ask(), ask(), ask()  # the third crosses the budget
        with pytest.raises(BudgetExceededError):
            ask()
        _runtime.writer().force_flush()
    finally:
        llm_toll.set_store(None)
    assert [row[:4] for row in store.rows] == [("old-store", priced_model, 1000, 0)] * 3
    assert store.get_total_cost("old-store") == pytest.approx(3.0)
    with store:
        pass
    assert store.closed


def test_a_failing_store_written_for_0_13_breaks_no_call_and_loses_nothing(
    priced_model: str,
) -> None:
    store = Store013()
    store.down = True
    llm_toll.set_store(store)
    try:

        @track_costs(project="old-broken", max_budget=2.5)
        def ask() -> dict[str, Any]:
            return chat(1000, 0, model=priced_model)

        with pytest.warns(AccountingWarning):
            assert ask()["model"] == priced_model
        assert store.rows == []
        store.down = False
        assert _runtime.writer().force_flush()  # the record kept in memory is written now
    finally:
        store.down = False
        llm_toll.set_store(None)
    assert [row[:4] for row in store.rows] == [("old-broken", priced_model, 1000, 0)]


def test_crossing_call_returns_and_later_calls_are_refused(
    store: SQLiteStore, telemetry: Telemetry, priced_model: str
) -> None:
    calls = 0

    @track_costs(project="budget-cross", max_budget=2.5)
    def ask() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return chat(1000, 0, model=priced_model)  # $1.00 a call

    assert ask()["model"] == priced_model  # $1
    ask()  # $2
    crossing = ask()  # $3: crosses 2.5, still returns and is recorded
    assert crossing["usage"]["prompt_tokens"] == 1000
    assert store.get_total_cost("budget-cross") == pytest.approx(3.0)
    with pytest.raises(BudgetExceededError) as refused:
        ask()
    assert calls == 3  # the refused call never ran
    assert refused.value.project == "budget-cross"
    assert refused.value.current_cost == pytest.approx(3.0)
    assert refused.value.max_budget == pytest.approx(2.5)

    spans = telemetry.requests()
    assert len(spans) == 4
    events = [(s.name, e.name, dict(e.attributes or {})) for s in spans for e in s.events]
    exceeded = [e for e in events if e[1] == "llm_toll.budget.exceeded"]
    assert len(exceeded) == 2  # the crossing call, and the refusal
    assert exceeded[0][2]["llm_toll.budget.spent"] == pytest.approx(3.0)
    thresholds = [e[2]["llm_toll.budget.threshold"] for e in events
                  if e[1] == "llm_toll.budget.threshold"]  # fmt: skip
    assert thresholds == [0.5, 0.8, 1.0]  # each once, in the call that crossed it
    refusal = spans[-1]
    assert refusal.attributes is not None
    assert refusal.attributes["error.type"] == "BudgetExceededError"
    assert (
        telemetry.sum_for("llm_toll.budget.rejections", **{"llm_toll.project": "budget-cross"}) == 1
    )


def test_threshold_attributes_and_gauges(
    store: SQLiteStore, telemetry: Telemetry, priced_model: str
) -> None:
    @track_costs(project="budget-gauge", max_budget=4.0, reset="daily")
    def ask() -> dict[str, Any]:
        return chat(1000, 0, model=priced_model)

    ask()
    span = telemetry.span()
    assert span.attributes is not None
    assert span.attributes["llm_toll.budget.spent"] == pytest.approx(1.0)
    assert span.attributes["llm_toll.budget.period"] == "daily"
    [point] = [p for p in telemetry.points("llm_toll.budget.utilization")
               if p.attributes["llm_toll.project"] == "budget-gauge"]  # fmt: skip
    assert point.value == pytest.approx(0.25)
    [row] = [r for r in store.get_budget_utilization()
             if r["project"] == "budget-gauge" and r["period"] != "all"]  # fmt: skip
    assert row["utilization"] == pytest.approx(0.25)


async def test_async_refusal_before_spend(store: SQLiteStore, priced_model: str) -> None:
    ran = 0

    @track_costs(project="budget-async", max_budget=1.0)
    async def ask() -> dict[str, Any]:
        nonlocal ran
        ran += 1
        return chat(1000, 0, model=priced_model)

    await ask()
    with pytest.raises(BudgetExceededError):
        await ask()
    assert ran == 1


def test_zero_budget_refuses_everything(store: SQLiteStore) -> None:
    @track_costs(project="budget-zero", max_budget=0)
    def ask() -> dict[str, Any]:
        raise AssertionError("must not run")

    with pytest.raises(BudgetExceededError):
        ask()


def test_invalid_configuration_is_rejected_at_decoration() -> None:
    with pytest.raises(ValueError, match="reset"):
        track_costs(reset="hourly")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_budget"):
        track_costs(max_budget=-1)
    with pytest.raises(ValueError, match="project"):
        track_costs(project="")


def test_unknown_model_is_recorded_flagged_and_counted(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    @track_costs(project="budget-unknown")
    def ask() -> dict[str, Any]:
        return chat(10, 5, model="totally-new-model-9000")

    with pytest.warns(PricingMatrixOutdatedWarning, match="totally-new-model-9000"):
        ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ask()  # warned once per model, not per call
    rows = store.get_usage_logs("budget-unknown")
    assert [(r["input_tokens"], r["output_tokens"], r["cost"]) for r in rows] == [(10, 5, 0.0)] * 2
    span = telemetry.requests()[0]
    assert span.attributes is not None and span.attributes["llm_toll.price.known"] is False
    assert (
        telemetry.sum_for(
            "llm_toll.calls.unpriced", **{"gen_ai.request.model": "totally-new-model-9000"}
        )
        == 2
    )


def test_cost_counter_matches_the_store(store: SQLiteStore, telemetry: Telemetry) -> None:
    @track_costs(project="budget-counter")
    def ask(n: int) -> dict[str, Any]:
        return chat(100 + n, 10 + n)

    for n in range(25):
        ask(n)
    counted = telemetry.sum_for("llm_toll.cost", **{"llm_toll.project": "budget-counter"})
    assert usd_to_nanos(counted) == usd_to_nanos(store.get_total_cost("budget-counter"))


async def test_gather_200_is_exact_and_keeps_store_io_off_the_loop(
    store: SQLiteStore, priced_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 concurrent calls are recorded exactly, and no store read or write runs on the
    event loop's thread (how long the loop is held is measured by ``make bench``)."""
    loop_thread = threading.get_ident()
    store_threads: set[int] = set()
    for name in ("record_call", "get_spent"):
        original = getattr(store, name)

        def spy(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            store_threads.add(threading.get_ident())
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)

    @track_costs(project="budget-gather", max_budget=1000.0)
    async def ask(i: int) -> dict[str, Any]:
        await asyncio.sleep(0)
        return chat(1000 + i, i, model=priced_model)

    results = await asyncio.gather(*(ask(i) for i in range(200)))
    assert len(results) == 200
    # Reads wait for the writes in flight, so every write has run once this returns.
    assert len(store.get_usage_logs("budget-gather", limit=1000)) == 200
    assert store_threads and loop_thread not in store_threads
    expected = sum(usd_to_nanos("0.001") * (1000 + i) + usd_to_nanos("0.002") * i
                   for i in range(200))  # fmt: skip
    assert usd_to_nanos(store.get_total_cost("budget-gather")) == expected


def test_rate_limit_refuses_before_the_call(store: SQLiteStore, telemetry: Telemetry) -> None:
    ran = 0

    @track_costs(project="rate-limited", rate_limit=2)
    def ask() -> dict[str, Any]:
        nonlocal ran
        ran += 1
        return chat(10, 1)

    ask()
    ask()
    with pytest.raises(LocalRateLimitError) as refused:
        ask()
    assert ran == 2
    assert refused.value.limit_type == "rpm" and refused.value.limit_value == 2
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 60
    errors = [s for s in telemetry.spans() if (s.attributes or {}).get("error.type")]
    assert [s.attributes["error.type"] for s in errors if s.attributes] == ["LocalRateLimitError"]
    rejections = telemetry.sum_for(
        "llm_toll.ratelimit.rejections", **{"llm_toll.project": "rate-limited"}
    )
    assert rejections == 1


def test_tokens_per_minute_reserve_the_prompt_before_the_call(store: SQLiteStore) -> None:
    ran = 0

    @track_costs(project="tpm-limited", tpm_limit=100)
    def ask(prompt: str) -> dict[str, Any]:
        nonlocal ran
        ran += 1
        return chat(60, 1)

    prompt = "word " * 48  # about 60 tokens by llm_toll's estimate
    ask(prompt)  # 61 tokens used in the window
    # 61 used + about 60 reserved for this prompt > 100: refused before it runs. Without the
    # reservation it would be let in, since 61 < 100.
    with pytest.raises(LocalRateLimitError) as refused:
        ask(prompt)
    assert refused.value.limit_type == "tpm" and ran == 1
    ask("hi")  # a short prompt still fits: 61 + 1 <= 100
    assert ran == 2
