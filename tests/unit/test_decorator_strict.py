"""Strict budgets through the decorator: the worst case is reserved before the call runs."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from llm_toll import BudgetExceededError, default_registry, track_costs
from llm_toll._call.request_bound import max_output_tokens
from llm_toll.exceptions import UsageWarning
from llm_toll.store import SQLiteStore
from tests.support.otel import Telemetry
from tests.unit.test_decorator_shapes import chat, chunks

MESSAGES = [{"role": "user", "content": "hi"}]  # one estimated input token


@pytest.fixture
def priced_model() -> str:
    """$1 per 1,000 input tokens, $2 per 1,000 output tokens."""
    name = "strict-test-model"
    default_registry.register_model(name, 0.001, 0.002)
    return name


def now() -> datetime:
    return datetime.now(timezone.utc)


def reserved(store: SQLiteStore, project: str, key: str | None = None) -> int:
    return store.get_reserved(project, None, now(), budget_key=key)


def test_strict_refuses_a_call_whose_worst_case_does_not_fit(
    store: SQLiteStore, telemetry: Telemetry, priced_model: str
) -> None:
    ran = 0

    @track_costs(project="strict-fit", max_budget=1.0, strict=True)
    def ask(**kwargs: Any) -> dict[str, Any]:
        nonlocal ran
        ran += 1
        return chat(100, 100, model=priced_model)  # $0.30

    ask(model=priced_model, messages=MESSAGES, max_tokens=300)  # worst case $0.601
    assert store.get_total_cost("strict-fit") == pytest.approx(0.3)
    assert reserved(store, "strict-fit") == 0  # settled to the actual cost
    # $0.30 spent, far under $1, but $0.30 + $0.801 does not fit: refused before it runs.
    with pytest.raises(BudgetExceededError) as refused:
        ask(model=priced_model, messages=MESSAGES, max_tokens=400)
    assert ran == 1
    assert refused.value.current_cost == pytest.approx(0.3)
    assert refused.value.max_budget == pytest.approx(1.0)
    assert "worst case" in str(refused.value)
    ask(model=priced_model, messages=MESSAGES, max_tokens=300)  # $0.30 + $0.601 fits
    assert ran == 2
    refusal = [s for s in telemetry.spans() if s.status.status_code.name == "ERROR"]
    assert len(refusal) == 1
    assert refusal[0].attributes is not None
    assert refusal[0].attributes["error.type"] == "BudgetExceededError"
    assert [e.name for e in refusal[0].events] == ["llm_toll.budget.exceeded"]
    assert telemetry.sum_for("llm_toll.budget.rejections", **{"llm_toll.project": "strict-fit"})


def test_without_strict_the_same_call_goes_through(store: SQLiteStore, priced_model: str) -> None:
    @track_costs(project="strict-off", max_budget=1.0)
    def ask(**kwargs: Any) -> dict[str, Any]:
        return chat(100, 100, model=priced_model)

    ask(model=priced_model, messages=MESSAGES, max_tokens=300)
    ask(model=priced_model, messages=MESSAGES, max_tokens=400)
    assert store.get_total_cost("strict-off") == pytest.approx(0.6)
    assert reserved(store, "strict-off") == 0


def test_strict_releases_the_reservation_when_the_call_raises(
    store: SQLiteStore, priced_model: str
) -> None:
    @track_costs(project="strict-raise", max_budget=1.0, strict=True, model=priced_model)
    def ask(fail: bool, max_tokens: int) -> dict[str, Any]:
        assert reserved(store, "strict-raise") > 0  # held while the call runs
        if fail:
            raise RuntimeError("provider down")
        return chat(100, 100, model=priced_model)

    for _ in range(3):  # each worst case ($0.8) fits only because the last was released
        with pytest.raises(RuntimeError):
            ask(True, max_tokens=400)
        assert reserved(store, "strict-raise") == 0
    ask(False, max_tokens=400)
    assert store.get_total_cost("strict-raise") == pytest.approx(0.3)


def test_the_functions_own_defaults_and_positional_arguments_bound_the_call(
    store: SQLiteStore, priced_model: str
) -> None:
    """``def answer(question, model=..., max_tokens=...)`` called as ``answer("...")``: its
    worst case is read from its defaults, or from what is passed by position."""

    def answer(question: str, model: str = priced_model, max_tokens: int = 300) -> Any:
        return chat(100, 100, model=priced_model)  # $0.30

    ask = track_costs(project="strict-defaults", max_budget=1.0, strict=True)(answer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the worst case is known: no fallback warning
        ask("q1")  # $0.601 reserved of $1, then $0.30 spent
        with pytest.raises(BudgetExceededError, match="worst case"):
            ask("q2", priced_model, 400)  # $0.30 + $0.801 > $1: by position, refused
        ask("q3")  # $0.30 + $0.601 fits
    assert store.get_total_cost("strict-defaults") == pytest.approx(0.6)
    assert reserved(store, "strict-defaults") == 0


def test_a_default_model_prices_a_text_result(store: SQLiteStore, priced_model: str) -> None:
    @track_costs(project="default-model")
    def answer(question: str, model: str = priced_model) -> str:
        return "a few words of answer"

    with pytest.warns(UsageWarning, match="returned text"):
        answer("What are the primary colours?")
    [row] = store.get_usage_logs("default-model")
    assert row["model"] == priced_model
    assert row["estimated"] and row["cost"] > 0


def test_an_estimate_function_wins(store: SQLiteStore, priced_model: str) -> None:
    seen: list[Any] = []

    def worst(question: str, **kwargs: Any) -> float:
        seen.append((question, kwargs))
        return 0.6

    @track_costs(project="strict-est", max_budget=1.0, strict=True, estimate=worst)
    def ask(question: str, **kwargs: Any) -> dict[str, Any]:
        return chat(100, 100, model=priced_model)

    ask("q1", model=priced_model, max_tokens=1)
    assert seen == [("q1", {"model": priced_model, "max_tokens": 1})]
    # $0.30 spent + $0.60 estimated fits; then $0.60 + $0.60 does not, whatever max_tokens says.
    ask("q2", model=priced_model, max_tokens=1)
    with pytest.raises(BudgetExceededError):
        ask("q3", model=priced_model, max_tokens=1)
    assert store.get_total_cost("strict-est") == pytest.approx(0.6)


def test_no_worst_case_warns_once_and_falls_back_to_the_plain_check(
    store: SQLiteStore, priced_model: str
) -> None:
    @track_costs(project="strict-fallback", max_budget=0.5, strict=True)
    def ask(**kwargs: Any) -> dict[str, Any]:
        return chat(100, 100, model=priced_model)

    with pytest.warns(UsageWarning, match="worst-case cost is unknown"):
        ask(model=priced_model, messages=MESSAGES)  # no max_tokens
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ask(messages=MESSAGES)  # no model either: not warned again, still the plain check
    with pytest.raises(BudgetExceededError):  # $0.60 spent >= $0.50
        ask(messages=MESSAGES)
    assert store.get_total_cost("strict-fallback") == pytest.approx(0.6)


def test_strict_budget_keys(store: SQLiteStore, priced_model: str) -> None:
    @track_costs(
        project="strict-keys",
        max_budget=10.0,
        strict=True,
        model=priced_model,
        budget_key=lambda user, **kwargs: user,
        key_budget=1.0,
    )
    def ask(user: str, max_tokens: int) -> dict[str, Any]:
        return chat(100, 100, model=priced_model)

    ask("ann", max_tokens=300)
    with pytest.raises(BudgetExceededError) as refused:
        ask("ann", max_tokens=400)
    assert refused.value.budget_key == "ann"
    ask("bob", max_tokens=400)  # another key goes on
    assert reserved(store, "strict-keys") == 0
    assert reserved(store, "strict-keys", "ann") == 0


def test_streams_settle_at_their_end(store: SQLiteStore, priced_model: str) -> None:
    @track_costs(project="strict-stream", max_budget=1.0, strict=True, model=priced_model)
    def stream(max_tokens: int) -> Iterator[dict[str, Any]]:
        yield from chunks(100, 100)

    items = stream(max_tokens=300)
    next(items)
    assert reserved(store, "strict-stream") > 0
    list(items)
    assert reserved(store, "strict-stream") == 0
    assert store.get_total_cost("strict-stream") == pytest.approx(0.3)


async def test_async_strict_refuses_and_releases_on_cancellation(
    store: SQLiteStore, priced_model: str
) -> None:
    started = asyncio.Event()

    @track_costs(project="strict-async", max_budget=1.0, strict=True, model=priced_model)
    async def ask(max_tokens: int, hang: bool = False) -> dict[str, Any]:
        if hang:
            started.set()
            await asyncio.sleep(3600)
        return chat(100, 100, model=priced_model)

    task = asyncio.ensure_future(ask(max_tokens=400, hang=True))
    await started.wait()
    with pytest.raises(BudgetExceededError):  # $0.80 held by the hanging call
        await ask(max_tokens=400)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ask(max_tokens=400)  # released: it fits again
    results = await asyncio.gather(*(ask(max_tokens=300) for _ in range(5)),
                                   return_exceptions=True)  # fmt: skip
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1  # $0.30 + $0.601 fits once; then $0.601 is held or $0.60 spent
    assert store.get_total_cost("strict-async") == pytest.approx(0.6)
    assert reserved(store, "strict-async") == 0


def test_output_caps_are_found_in_gemini_configurations() -> None:
    assert max_output_tokens({"max_tokens": 10, "max_completion_tokens": 30}) == 30
    assert max_output_tokens({"config": {"max_output_tokens": 40}}) == 40
    assert max_output_tokens({"config": SimpleNamespace(max_output_tokens=50)}) == 50
    assert max_output_tokens({"generation_config": {"maxOutputTokens": 60}}) == 60
    assert max_output_tokens({"max_tokens": True, "messages": []}) is None


def test_invalid_strict_options_are_rejected_at_decoration() -> None:
    with pytest.raises(ValueError, match="max_budget"):
        track_costs(strict=True)
    with pytest.raises(ValueError, match="strict=True"):
        track_costs(max_budget=1.0, estimate=lambda: 1.0)
    with pytest.raises(ValueError, match="strict"):
        track_costs(max_budget=1.0, strict=1)  # type: ignore[call-overload]
