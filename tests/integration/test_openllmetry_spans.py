"""price_foreign_spans with OpenLLMetry: the real opentelemetry-instrumentation-openai and
-anthropic (traceloop) around the real SDKs, against the replay server. Their spans carry
the conventions' names; an Anthropic span's input count adds the cache reads and writes to
Anthropic's ``input_tokens``, so a cached call is priced in full, once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry.instrumentation.openai import OpenAIInstrumentor

import llm_toll
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES, genai_prices_nanos
from tests.integration.test_foreign_spans import PROJECT, Instrumented, instrumented_by
from tests.support.otel import Telemetry

OPENLLMETRY_OPENAI = "opentelemetry.instrumentation.openai."


def openllmetry_layers() -> Iterator[tuple[type, str, Any]]:
    """The wrapt layers OpenLLMetry's OpenAI instrumentation left on the openai SDK's
    resource classes (the outermost of each method)."""
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("openai.resources"):
            continue
        for cls in list(vars(module).values()):
            if not (isinstance(cls, type) and cls.__module__ == name):
                continue
            for attribute, value in list(vars(cls).items()):
                wrapper = getattr(value, "_self_wrapper", None)
                if getattr(wrapper, "__module__", "").startswith(OPENLLMETRY_OPENAI):
                    yield cls, attribute, value


@pytest.fixture
def openllmetry() -> Iterator[Instrumented]:
    try:
        with instrumented_by(OpenAIInstrumentor(), AnthropicInstrumentor()) as app:
            yield app
    finally:
        # OpenLLMetry's OpenAIInstrumentor.uninstrument() leaves its wrappers on (0.62: it
        # passes "Completions.create" to unwrap() as one attribute name): take them off,
        # for the tests that follow.
        for cls, attribute, layer in list(openllmetry_layers()):
            setattr(cls, attribute, layer.__wrapped__)


def test_a_cached_openai_call(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    openllmetry: Instrumented,
    telemetry: Telemetry,
) -> None:
    replay.script(cached_tokens=1024, reasoning_tokens=30)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    [span] = openllmetry.exporter.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name.startswith("opentelemetry.instrumentation.openai")
    [row] = store.get_usage_logs(PROJECT)
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["cache_read_input_tokens"]) == (sent.input_tokens, 1024)
    assert (row["output_tokens"], row["reasoning_output_tokens"]) == (sent.output_tokens, 30)
    assert row["provider"] == "openai"
    assert row["response_id"] == replay.last.response_id
    assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], "openai") > 0
    assert telemetry.requests() == []


def test_a_cached_anthropic_call(
    store: SQLiteStore,
    replay: ReplayServer,
    anthropic_client: Any,
    openllmetry: Instrumented,
) -> None:
    replay.script(cached_tokens=2048, cache_creation_tokens=1024)
    anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES)

    [row] = store.get_usage_logs(PROJECT)
    sent = replay.last.tokens
    assert sent is not None
    assert sent.input_tokens > 2048 + 1024  # Anthropic's own input_tokens left them out
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert (row["cache_read_input_tokens"], row["cache_creation_input_tokens"]) == (2048, 1024)
    assert row["provider"] == "anthropic"
    assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], "anthropic") > 0


def test_requests_the_hooks_record_are_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    anthropic_client: Any,
    openllmetry: Instrumented,
    telemetry: Telemetry,
) -> None:
    replay.script(cached_tokens=1024)
    replay.script(cached_tokens=2048, cache_creation_tokens=1024)
    with llm_toll.run("openllmetry-run"):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
        )

    assert len(openllmetry.exporter.get_finished_spans()) == 2
    assert len(telemetry.requests()) == 2
    rows = store.get_usage_logs("openllmetry-run")
    assert len(rows) == 2
    assert {row["response_id"] for row in rows} == {e.response_id for e in replay.requests}
    assert store.get_usage_logs(PROJECT) == []
