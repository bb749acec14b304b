"""The attribute dialects of other instrumentations' spans, read from spans a real SDK
TracerProvider made: GenAI semantic conventions, OpenLLMetry's and OpenLIT's names; the
project from the span, the resource or the default; spans skipped or warned about."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind

import llm_toll
from llm_toll._budget import foreign
from llm_toll._budget.once import claims
from llm_toll._worker import worker
from llm_toll.exceptions import UsageWarning
from llm_toll.pricing import default_registry
from llm_toll.store import SQLiteStore
from llm_toll.usage._base import Usage


class Spans:
    """Spans of another instrumentation, made with an SDK TracerProvider llm_toll is
    attached to."""

    def __init__(self, resource: dict[str, str]) -> None:
        self.provider = TracerProvider(resource=Resource.create(resource))
        llm_toll.telemetry.attach(self.provider)
        self.made: list[ReadableSpan] = []

    def make(
        self,
        attributes: dict[str, Any],
        scope: str = "some.genai.instrumentation",
        kind: SpanKind = SpanKind.CLIENT,
    ) -> ReadableSpan:
        tracer = self.provider.get_tracer(scope)
        with tracer.start_as_current_span("chat", kind=kind, attributes=attributes) as span:
            pass
        worker.wait_idle()
        made: ReadableSpan = span  # type: ignore[assignment]
        return made


@pytest.fixture
def spans() -> Iterator[Spans]:
    foreign.enable(True)
    made = Spans({"service.name": "svc"})
    try:
        yield made
    finally:
        foreign.enable(False)
        made.provider.shutdown()


def expected_nanos(span: ReadableSpan, model: str, usage: Usage) -> int:
    assert span.start_time is not None
    at = datetime.fromtimestamp(span.start_time / 1e9, timezone.utc)
    return default_registry.price(model, usage, provider="openai", at=at).cost_nanos


SEMCONV = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.id": "chatcmpl-semconv",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 200,
    "gen_ai.usage.cache_read.input_tokens": 400,
    "gen_ai.usage.reasoning.output_tokens": 50,
}


def test_semantic_conventions(store: SQLiteStore, spans: Spans) -> None:
    span = spans.make({**SEMCONV, "llm_toll.project": "from-span"})
    [row] = store.get_usage_logs("from-span")
    usage = Usage(1000, 200, cache_read_input_tokens=400, reasoning_output_tokens=50)
    assert row["model"] == "gpt-4o-2024-08-06"
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 200)
    assert (row["cache_read_input_tokens"], row["reasoning_output_tokens"]) == (400, 50)
    assert row["provider"] == "openai"
    assert row["cost_nanos"] == expected_nanos(span, "gpt-4o-2024-08-06", usage) > 0


def test_openllmetry_before_0_48(store: SQLiteStore, spans: Spans) -> None:
    # The names of semconv_ai's SpanAttributes.LLM_* that OpenLLMetry 0.47 set
    # (opentelemetry/instrumentation/openai/shared/__init__.py, ``_set_response_attributes``).
    span = spans.make(
        {
            "gen_ai.system": "OpenAI",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 300,
            "gen_ai.usage.completion_tokens": 40,
            "llm.usage.total_tokens": 340,
            "gen_ai.usage.cache_read_input_tokens": 100,
            "gen_ai.usage.reasoning_tokens": 10,
            "llm_toll.project": "openllmetry",
        },
        scope="opentelemetry.instrumentation.openai.v1",
    )
    [row] = store.get_usage_logs("openllmetry")
    usage = Usage(300, 40, cache_read_input_tokens=100, reasoning_output_tokens=10)
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_input_tokens"]) == (
        300,
        40,
        100,
    )
    assert row["reasoning_output_tokens"] == 10
    assert row["provider"] == "openai"
    assert row["cost_nanos"] == expected_nanos(span, "gpt-4o-mini", usage) > 0


# One cached Anthropic call: 3,000 uncached input tokens, 2,000 read from the cache, 1,000
# written to it (5-minute TTL), 50 output tokens. claude-sonnet-4-5 at $3 / $0.30 / $3.75
# per million input tokens and $15 per million output tokens:
# 9,000 + 600 + 3,750 + 750 micro-dollars.
CACHED_CALL_NANOS = 14_100_000
ANTHROPIC = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.cache_read.input_tokens": 2000,
    "gen_ai.usage.cache_creation.input_tokens": 1000,
}


def assert_cached_anthropic_call(store: SQLiteStore, project: str) -> None:
    [row] = store.get_usage_logs(project)
    assert row["provider"] == "anthropic"
    assert (row["input_tokens"], row["output_tokens"]) == (6000, 50)
    assert (row["cache_read_input_tokens"], row["cache_creation_input_tokens"]) == (2000, 1000)
    assert row["cost_nanos"] == CACHED_CALL_NANOS


def test_anthropic_input_with_the_cache_as_the_conventions_count_it(
    store: SQLiteStore, spans: Spans
) -> None:
    # OpenLLMetry 0.48+ too: ``input_tokens = prompt_tokens + cache_read_tokens +
    # cache_creation_tokens`` (opentelemetry/instrumentation/anthropic/__init__.py,
    # ``_set_token_usage``).
    spans.make(
        {**ANTHROPIC, "gen_ai.usage.input_tokens": 6000, "llm_toll.project": "semconv"},
        scope="opentelemetry.instrumentation.anthropic",
    )
    assert_cached_anthropic_call(store, "semconv")


def test_anthropic_input_of_openllmetry_before_0_48(store: SQLiteStore, spans: Spans) -> None:
    # ``LLM_USAGE_PROMPT_TOKENS`` set to the same sum, cache counts under semconv_ai's names.
    spans.make(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.prompt_tokens": 6000,
            "gen_ai.usage.completion_tokens": 50,
            "gen_ai.usage.cache_read_input_tokens": 2000,
            "gen_ai.usage.cache_creation_input_tokens": 1000,
            "llm_toll.project": "openllmetry",
        },
        scope="opentelemetry.instrumentation.anthropic",
    )
    assert_cached_anthropic_call(store, "openllmetry")


@pytest.mark.parametrize(
    ("scope", "marked"),
    [
        ("openlit.otel.tracing", {}),
        ("some.genai.instrumentation", {"telemetry.sdk.name": "openlit"}),
    ],
)
def test_anthropic_input_of_openlit_leaves_the_cache_out(
    store: SQLiteStore, spans: Spans, scope: str, marked: dict[str, str]
) -> None:
    # OpenLIT sets Anthropic's own ``input_tokens``, cache reads and writes not included
    # (openlit/instrumentation/anthropic/utils.py, ``common_chat_logic``), and marks its
    # spans ``telemetry.sdk.name=openlit`` (openlit/__helpers.py).
    spans.make(
        {
            **ANTHROPIC,
            **marked,
            "gen_ai.usage.input_tokens": 3000,
            "gen_ai.usage.cost": 0.5,  # OpenLIT's own price: not used
            "llm_toll.project": "openlit",
        },
        scope=scope,
    )
    assert_cached_anthropic_call(store, "openlit")


def test_openai_input_of_openlit_holds_the_cache(store: SQLiteStore, spans: Spans) -> None:
    # OpenAI's prompt_tokens include cached tokens, and OpenLIT sets them as they are
    # (openlit/instrumentation/openai/utils.py).
    span = spans.make(
        {
            **{k: v for k, v in SEMCONV.items() if k != "gen_ai.usage.reasoning.output_tokens"},
            "gen_ai.usage.reasoning_tokens": 50,
            "telemetry.sdk.name": "openlit",
            "llm_toll.project": "openlit",
        },
        scope="openlit.otel.tracing",
    )
    [row] = store.get_usage_logs("openlit")
    usage = Usage(1000, 200, cache_read_input_tokens=400, reasoning_output_tokens=50)
    assert (row["input_tokens"], row["cache_read_input_tokens"]) == (1000, 400)
    assert row["reasoning_output_tokens"] == 50
    assert row["cost_nanos"] == expected_nanos(span, "gpt-4o-2024-08-06", usage) > 0


def test_default_project(store: SQLiteStore, spans: Spans) -> None:
    spans.make(SEMCONV)
    assert len(store.get_usage_logs("default")) == 1


def test_skipped_spans(store: SQLiteStore, spans: Spans) -> None:
    spans.make({**SEMCONV, "gen_ai.response.id": "a"}, scope="llm_toll")  # llm_toll's own
    spans.make({**SEMCONV, "gen_ai.response.id": "b"}, kind=SpanKind.INTERNAL)  # not a request
    spans.make({"gen_ai.request.model": "gpt-4o"})  # no usage: not a request's span
    assert claims.claim("c", "hooks")  # llm_toll's hooks recorded this response
    spans.make({**SEMCONV, "gen_ai.response.id": "c"})
    assert store.get_usage_logs("default") == []


def test_a_span_inside_llm_toll_request_span_is_skipped(store: SQLiteStore, spans: Spans) -> None:
    ours = spans.provider.get_tracer("llm_toll")
    with ours.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT):
        spans.make(SEMCONV)
    assert store.get_usage_logs("default") == []


def test_malformed_usage_is_one_warning(store: SQLiteStore, spans: Spans) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spans.make({**SEMCONV, "gen_ai.usage.input_tokens": "lots"})
        spans.make({**SEMCONV, "gen_ai.usage.input_tokens": -1})
        spans.make({"gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 1})  # no model
    assert [w.category for w in caught] == [UsageWarning]
    assert "some.genai.instrumentation" in str(caught[0].message)
    assert store.get_usage_logs("default") == []


def test_off_by_default(store: SQLiteStore) -> None:
    made = Spans({})
    try:
        made.make(SEMCONV)
    finally:
        made.provider.shutdown()
    assert store.get_usage_logs("default") == []


@pytest.mark.parametrize(
    ("scope", "attributes"),
    [
        ("opentelemetry.instrumentation.anthropic", {"gen_ai.usage.input_tokens": 6000}),
        ("openlit.otel.tracing", {"gen_ai.usage.input_tokens": 3000}),
        (
            "opentelemetry.instrumentation.anthropic",
            {"gen_ai.usage.prompt_tokens": 6000, "gen_ai.usage.completion_tokens": 50},
        ),
    ],
)
def test_a_response_the_hooks_recorded_is_not_recorded_again(
    store: SQLiteStore, spans: Spans, scope: str, attributes: dict[str, Any]
) -> None:
    assert claims.claim("msg_recorded", "hooks")
    spans.make({**ANTHROPIC, **attributes, "gen_ai.response.id": "msg_recorded"}, scope=scope)
    spans.make({**ANTHROPIC, **attributes, "gen_ai.response.id": "msg_new"}, scope=scope)
    assert [row["response_id"] for row in store.get_usage_logs("default")] == ["msg_new"]
