"""A paid call is never turned into an exception: the cases of the issue, one by one.

A result whose attributes raise, an ``extract_usage=`` that returns an ``ExtractedUsage``
with garbage inside, counts and costs beyond what a store holds, telemetry and recording
that fail: the caller gets the function's value (or its own exception), the call is
recorded once and flagged, and llm_toll warns.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

import llm_toll
from llm_toll import track_costs
from llm_toll._budget.money import MAX_CALL_COST_NANOS
from llm_toll._warnings import forget_warnings, shown
from llm_toll._worker import worker
from llm_toll.exceptions import AccountingWarning, TelemetryWarning, UsageWarning
from llm_toll.pricing import default_registry
from llm_toll.store import SQLiteStore
from llm_toll.usage import ExtractedUsage, Usage, request_text
from tests.support.garbage import Hostile, Trap
from tests.unit.test_decorator_shapes import chat


class LazyResponse:
    """A response proxy whose fields are read lazily, and whose reads fail: the provider
    was paid, the object cannot tell how much."""

    object = "chat.completion"

    @property
    def usage(self) -> Any:
        raise ConnectionError("the lazy field could not be fetched")

    @property
    def choices(self) -> Any:
        raise ConnectionError("the lazy field could not be fetched")


@pytest.mark.parametrize("response", [Hostile(), LazyResponse()], ids=["proxy", "lazy-field"])
def test_a_result_whose_reading_raises_is_returned_and_recorded(
    store: SQLiteStore, response: Any
) -> None:
    @track_costs(project="paid-unreadable", model="gpt-4o")
    def ask(prompt: str) -> Any:
        return response

    with pytest.warns(UsageWarning, match="reading its result raised"):
        assert ask("What does a lazy proxy cost?") is response
    [row] = store.get_usage_logs("paid-unreadable")
    assert row["estimated"]
    assert row["input_tokens"] > 0  # the prompt, estimated from the call's arguments
    assert row["model"] == "gpt-4o"


async def test_an_async_result_whose_reading_raises_is_returned_and_recorded(
    store: SQLiteStore,
) -> None:
    response = Hostile()

    @track_costs(project="paid-unreadable-async", max_budget=1.0)
    async def ask() -> Any:
        return response

    with pytest.warns(UsageWarning, match="reading its result raised"):
        assert await ask() is response
    [row] = store.get_usage_logs("paid-unreadable-async")
    assert row["estimated"]


GARBAGE_COUNTS = [-1, 2.0, math.nan, math.inf, 10**12, 2**64, "12", None, True, Hostile()]
COUNT_FIELDS = [
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
]


def _garbage_cases() -> Iterator[Any]:
    for field in COUNT_FIELDS:
        for value in GARBAGE_COUNTS:
            if value is None and field not in ("input_tokens", "output_tokens"):
                continue  # None is 0 for the detail counts
            counts: dict[str, Any] = {"input_tokens": 10, "output_tokens": 5, field: value}
            yield pytest.param(
                ExtractedUsage(Usage(**counts), model="gpt-4o"), id=f"{field}={shown(value)}"
            )
    models: tuple[Any, ...] = (5, b"gpt-4o", ["gpt-4o"], Hostile())
    for model in models:
        yield pytest.param(ExtractedUsage(Usage(10, 5), model=model), id=f"model={shown(model)}")
    odd: dict[str, Any] = {"provider": 7, "operation": 2.5, "response_id": b"id"}
    for field, value in odd.items():
        yield pytest.param(ExtractedUsage(Usage(10, 5), **{field: value}), id=f"{field}={value}")
    yield pytest.param(ExtractedUsage(Usage(10, 5), estimated="no"), id="estimated=str")  # type: ignore[arg-type]
    yield pytest.param(ExtractedUsage("10 in, 5 out"), id="usage=str")  # type: ignore[arg-type]


@pytest.mark.parametrize("returned", list(_garbage_cases()))
def test_an_extracted_usage_with_garbage_inside_is_recorded_estimated(
    store: SQLiteStore, returned: ExtractedUsage
) -> None:
    @track_costs(project="paid-garbage", extract_usage=lambda response: returned)
    def ask(prompt: str) -> dict[str, str]:
        return {"data": "not an LLM response: only the extractor knew how to read it"}

    with pytest.warns(UsageWarning, match="extract_usage failed"):
        value = ask("How much was this?")
    assert value["data"].startswith("not an LLM response")
    [row] = store.get_usage_logs("paid-garbage")
    assert row["estimated"]
    assert row["input_tokens"] > 0


def test_an_extractor_that_fails_falls_back_to_the_response(store: SQLiteStore) -> None:
    """The usage the response itself reports wins over an estimate."""

    @track_costs(project="paid-fallback", extract_usage=lambda r: ExtractedUsage(Usage(-5, 1)))
    def ask() -> dict[str, Any]:
        return chat(30, 7)

    with pytest.warns(UsageWarning, match="extract_usage failed"):
        ask()
    [row] = store.get_usage_logs("paid-fallback")
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (30, 7, 0)


def test_counts_beyond_what_a_store_holds_are_flagged_not_dropped(store: SQLiteStore) -> None:
    @track_costs(project="paid-huge", extract_usage=lambda r: ("gpt-4o", 2**64, 5))
    def ask(prompt: str) -> str:
        return "an answer"

    with pytest.warns(UsageWarning, match="implausibly large"):
        assert ask("a question") == "an answer"
    [row] = store.get_usage_logs("paid-huge")
    assert row["estimated"]
    assert row["input_tokens"] < 2**63


def test_a_cost_beyond_what_a_record_holds_is_clamped_and_flagged(store: SQLiteStore) -> None:
    # A price no model has: $1,000 a token, so 10,000 tokens cost $10,000,000.
    default_registry.register_model("llm-toll-test-overpriced", 1_000.0, 1_000.0)

    @track_costs(project="paid-overpriced", model="llm-toll-test-overpriced")
    def ask() -> dict[str, Any]:
        return chat(10_000, 0)

    with pytest.warns(AccountingWarning, match="recorded at that amount"):
        ask()
    [row] = store.get_usage_logs("paid-overpriced")
    assert row["cost_nanos"] == MAX_CALL_COST_NANOS
    assert not row["price_known"]
    assert row["input_tokens"] == 10_000


class RaisingProcessor(SpanProcessor):
    """An app's span processor that raises for the spans of one project, while armed."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.added = False
        self.armed = False

    def _mine(self, span: ReadableSpan) -> bool:
        return self.armed and (span.attributes or {}).get("llm_toll.project") == self.project

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        if self._mine(span) and span.kind is trace.SpanKind.INTERNAL:
            raise RuntimeError("the app's processor failed at start")

    def on_end(self, span: ReadableSpan) -> None:
        if self._mine(span):
            raise RuntimeError("the app's processor failed at end")


_RAISING = RaisingProcessor("paid-telemetry")


@pytest.fixture
def raising_project() -> Iterator[str]:
    """A project whose spans an app's span processor fails on. The processor is added to
    the session's provider once, and fails only while a test has it armed."""
    if not _RAISING.added:
        provider = trace.get_tracer_provider()
        assert isinstance(provider, TracerProvider)
        provider.add_span_processor(_RAISING)
        _RAISING.added = True
    _RAISING.armed = True
    try:
        yield _RAISING.project
    finally:
        _RAISING.armed = False


def test_a_span_processor_that_raises_does_not_break_a_call(
    store: SQLiteStore, raising_project: str
) -> None:
    @track_costs(project=raising_project)
    def ask() -> dict[str, Any]:
        return chat(12, 3)

    with pytest.warns(TelemetryWarning, match="span"):
        assert ask() == chat(12, 3)
    [row] = store.get_usage_logs(raising_project)
    assert (row["input_tokens"], row["output_tokens"]) == (12, 3)


class OwnError(Exception):
    pass


def test_a_failed_call_keeps_its_own_exception_when_telemetry_fails(
    store: SQLiteStore, raising_project: str
) -> None:
    error = OwnError("the function's own")

    @track_costs(project=raising_project)
    def ask() -> None:
        raise error

    with pytest.warns(TelemetryWarning), pytest.raises(OwnError) as raised:
        ask()
    assert raised.value is error


def test_a_cost_line_that_cannot_be_printed_is_a_warning(store: SQLiteStore) -> None:
    closed = io.StringIO()
    closed.close()  # the per-call cost line cannot be written
    llm_toll.set_reporter(llm_toll.CostReporter(file=closed))
    try:

        @track_costs(project="paid-reporter")
        def ask() -> dict[str, Any]:
            return chat(8, 2)

        with pytest.warns(TelemetryWarning, match="could not print a call's cost"):
            assert ask() == chat(8, 2)
    finally:
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    [row] = store.get_usage_logs("paid-reporter")
    assert (row["input_tokens"], row["output_tokens"]) == (8, 2)


class AppStore(SQLiteStore):
    """A store the app wrote on llm_toll's BaseStore API, with a bug: a write raises an
    exception that is no StoreError."""

    def record_call(self, call: Any, budget: Any = None, key_budget: Any = None) -> Any:
        raise KeyError("a bug in the app's store")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_store_that_raises_unexpectedly_is_a_warning(tmp_path: Path, kind: str) -> None:
    app_store = AppStore(tmp_path / "app.db")
    llm_toll.set_store(app_store)
    forget_warnings()
    try:

        @track_costs(project="paid-app-store")
        def ask() -> dict[str, Any]:
            return chat(8, 2)

        @track_costs(project="paid-app-store")
        async def ask_async() -> dict[str, Any]:
            return chat(8, 2)

        async def call() -> dict[str, Any]:
            result = ask() if kind == "sync" else await ask_async()
            worker.wait_idle()  # an async call's record is written in the worker
            return result

        with pytest.warns(AccountingWarning, match="could not record a call .*KeyError"):
            assert await call() == chat(8, 2)
    finally:
        llm_toll.set_store(None)
        app_store.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**5000, "<int>"),  # more digits than Python prints
        (Hostile(), "Hostile()"),
        ("x" * 500, "'" + "x" * 196 + "..."),
    ],
    ids=["huge-int", "hostile", "long"],
)
def test_a_value_in_a_message_is_shown_short_and_never_raises(value: Any, expected: str) -> None:
    assert shown(value) == expected


class UnprintableValue:
    def __repr__(self) -> str:
        raise Trap("repr")


def test_a_value_that_cannot_be_printed_is_named() -> None:
    assert shown(UnprintableValue()) == "<UnprintableValue>"


def test_the_prompt_of_unreadable_arguments_is_what_could_be_read() -> None:
    class Config(dict[str, Any]):
        def get(self, key: Any, default: Any = None) -> Any:
            raise Trap("get")

    assert request_text(("first part", Config(), "never reached"), {}) == "first part"
    assert request_text((), {"prompt": "the prompt", "config": Config()}) == "the prompt"
