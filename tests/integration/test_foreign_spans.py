"""price_foreign_spans: the real opentelemetry-instrumentation-openai-v2 around the real openai
SDK, against the replay server. A request llm_toll's hooks do not record (outside any run)
is recorded from the instrumentation's span, at genai-prices' price, in the project of the
resource; one they do record (inside a run) is recorded once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llm_toll
from llm_toll._budget import foreign
from llm_toll._budget.money import nanos_to_usd
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from llm_toll.telemetry import _providers as providers
from tests.integration.test_decorated_providers import MESSAGES, genai_prices_nanos
from tests.support.otel import Telemetry

PROJECT = "foreign-resource"


class Instrumented:
    """A TracerProvider of the app's (not the global one) with the instrumentor on it."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"llm_toll.project": PROJECT}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))


@contextmanager
def instrumented_by(*instrumentors: BaseInstrumentor) -> Iterator[Instrumented]:
    """``instrumentors`` on an app's TracerProvider that llm_toll prices the spans of."""
    saved = providers._settings, providers._resource
    app = Instrumented()
    llm_toll.setup_telemetry(price_foreign_spans=True, traces=False, metrics=False)
    llm_toll.telemetry.attach(app.provider)
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=app.provider)
    try:
        yield app
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        foreign.enable(False)
        providers._settings, providers._resource = saved
        providers._resolved = None
        app.provider.shutdown()


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    with instrumented_by(OpenAIInstrumentor()) as app:  # type: ignore[no-untyped-call]
        yield app


def chat(client: Any) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_a_request_llm_toll_did_not_hook_is_recorded_from_the_span(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    instrumented: Instrumented,
    telemetry: Telemetry,
) -> None:
    cost_before = telemetry.sum_for(
        "gen_ai.client.operation.cost", **{"gen_ai.request.model": "gpt-4o-mini"}
    )
    project_before = telemetry.sum_for("llm_toll.cost", **{"llm_toll.project": PROJECT})
    chat(openai_client)  # outside any run: llm_toll's hooks record nothing

    [span] = instrumented.exporter.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name != "llm_toll"
    rows = store.get_usage_logs(PROJECT)
    assert len(rows) == 1, rows
    [row] = rows
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert row["provider"] == "openai"
    assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], "openai") > 0
    assert telemetry.requests() == []  # llm_toll made no span of its own
    cost = nanos_to_usd(row["cost_nanos"])
    assert telemetry.sum_for(
        "llm_toll.cost", **{"llm_toll.project": PROJECT}
    ) - project_before == pytest.approx(cost)
    assert telemetry.sum_for(
        "gen_ai.client.operation.cost", **{"gen_ai.request.model": "gpt-4o-mini"}
    ) - cost_before == pytest.approx(cost)


def test_a_request_the_hooks_record_is_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    instrumented: Instrumented,
    telemetry: Telemetry,
) -> None:
    with llm_toll.run("foreign-run"):
        chat(openai_client)

    [theirs] = instrumented.exporter.get_finished_spans()
    [ours] = telemetry.requests()
    # The instrumentor wraps llm_toll's hook: its span is the parent of llm_toll's, and
    # ends after llm_toll recorded the response id.
    assert ours.parent is not None and ours.parent.span_id == theirs.context.span_id
    assert len(store.get_usage_logs("foreign-run")) == 1
    assert store.get_usage_logs(PROJECT) == []


async def test_an_async_request_the_hooks_record_is_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    async_openai_client: Any,
    instrumented: Instrumented,
) -> None:
    async with llm_toll.run("foreign-run"):
        await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert len(instrumented.exporter.get_finished_spans()) == 2
    # The first by llm_toll's hooks, the second (outside the run) from its span.
    [in_run] = store.get_usage_logs("foreign-run")
    [outside] = store.get_usage_logs(PROJECT)
    assert [in_run["response_id"], outside["response_id"]] == [
        e.response_id for e in replay.requests
    ]


def llm_toll_layers(method: Any) -> list[Any]:
    """The wrapper functions of llm_toll's modules in the stack of wrapt wrappers of
    ``method``, as the SDK holds it."""
    found = []
    while hasattr(method, "__wrapped__"):
        wrapper = getattr(method, "_self_wrapper", None)
        if getattr(wrapper, "__module__", "").startswith("llm_toll"):
            found.append(wrapper)
        method = method.__wrapped__
    return found


def test_uninstrument_under_another_instrumentation_takes_only_its_own_layer(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    instrumented: Instrumented,
    telemetry: Telemetry,
) -> None:
    import wrapt
    from openai._base_client import SyncAPIClient
    from opentelemetry.instrumentation.utils import unwrap

    # openai-v2 wraps ``Completions.create``; an instrumentation that wraps the method
    # llm_toll hooks, after it, stacks its wrapt layer on top of llm_toll's.
    theirs: list[object] = []

    def counting(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        theirs.append(instance)
        return wrapped(*args, **kwargs)

    llm_toll.instrument()
    wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient.request", counting)
    try:
        assert len(llm_toll_layers(vars(SyncAPIClient)["request"])) == 1
        llm_toll.uninstrument()
        assert llm_toll_layers(vars(SyncAPIClient)["request"]) == []

        chat(openai_client)  # both other instrumentations still see it; llm_toll's hook not
        assert len(theirs) == 1
        assert len(instrumented.exporter.get_finished_spans()) == 1
        assert telemetry.requests() == []
        assert len(store.get_usage_logs(PROJECT)) == 1  # priced from openai-v2's span

        assert llm_toll.instrument(project="again")
        assert llm_toll.instrument(project="again")  # idempotent: one layer, not two
        assert len(llm_toll_layers(vars(SyncAPIClient)["request"])) == 1
        chat(openai_client)
        assert len(theirs) == 2
        assert len(instrumented.exporter.get_finished_spans()) == 2
        assert len(telemetry.requests()) == 1
        assert len(store.get_usage_logs("again")) == 1
        assert len(store.get_usage_logs(PROJECT)) == 1
    finally:
        llm_toll.uninstrument()
        unwrap(SyncAPIClient, "request")
    assert not hasattr(vars(SyncAPIClient)["request"], "__wrapped__")
