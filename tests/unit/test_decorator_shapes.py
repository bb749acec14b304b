"""Every call shape of @track_costs, with OpenAI-shaped JSON dicts as responses."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from llm_toll import track_costs
from llm_toll.store import SQLiteStore
from tests.support.otel import Telemetry


def chat(
    prompt_tokens: int = 100, completion_tokens: int = 20, model: str = "gpt-4o"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }  # fmt: skip


def chunks(prompt_tokens: int = 30, completion_tokens: int = 3) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    parts = [
        {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        for word in ("one ", "two ", "three")
    ]
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip
    return [*parts, {**base, "choices": [], "usage": usage}]


def logs(store: SQLiteStore, project: str) -> list[dict[str, Any]]:
    return store.get_usage_logs(project)


class ClosableStream:
    """A stream object shaped like an SDK stream: an iterator with close() and extras."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = iter(items)
        self.closed = False
        self.response = "raw-http-response"

    def __iter__(self) -> ClosableStream:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._items)

    def close(self) -> None:
        self.closed = True


class AsyncClosableStream:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = iter(items)
        self.closed = False

    def __aiter__(self) -> AsyncClosableStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        self.closed = True


def test_bare_and_called_forms_keep_metadata(store: SQLiteStore) -> None:
    def answer(question: str, *, temperature: float = 0.0) -> dict[str, Any]:
        """Answer a question."""
        return chat()

    bare = track_costs(answer)
    called = track_costs(project="p")(answer)
    for wrapped in (bare, called):
        assert wrapped.__name__ == "answer"
        assert wrapped.__doc__ == "Answer a question."
        assert inspect.signature(wrapped) == inspect.signature(answer)
        assert wrapped.__wrapped__ is answer  # type: ignore[attr-defined]
    result = bare("q")
    assert result == chat()
    assert store.get_total_cost("default") > 0


def test_sync_call_records_and_spans(store: SQLiteStore, telemetry: Telemetry) -> None:
    @track_costs(project="shapes-sync", max_budget=5.0)
    def ask(x: int) -> dict[str, Any]:
        return chat(100, 20)

    ask(1)
    [row] = logs(store, "shapes-sync")
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == ("gpt-4o", 100, 20)
    span = telemetry.span()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.output_tokens"] == 20
    assert span.attributes["gen_ai.usage.cost.amount"] == pytest.approx(row["cost"])
    assert span.attributes["llm_toll.budget.limit"] == 5.0


class _CountingMeta(type):
    """Counts lookups of class attributes that do not exist, which pydantic's model
    metaclass answers by raising from Python code: the cost asked of every SDK response."""

    misses = 0

    def __getattr__(cls, name: str) -> Any:
        _CountingMeta.misses += 1
        raise AttributeError(name)


class _CountedResponse(dict[str, Any], metaclass=_CountingMeta):
    pass


def test_result_kind_is_asked_of_its_class_once(store: SQLiteStore) -> None:
    @track_costs(project="shapes-kind")
    def ask() -> dict[str, Any]:
        return _CountedResponse(chat(10, 2))

    ask()
    after_first = _CountingMeta.misses
    ask()
    ask()
    assert _CountingMeta.misses == after_first  # whether it is a stream: known by now
    assert len(logs(store, "shapes-kind")) == 3


async def test_async_call_records(store: SQLiteStore, telemetry: Telemetry) -> None:
    @track_costs(project="shapes-async", max_budget=5.0)
    async def ask() -> dict[str, Any]:
        await asyncio.sleep(0)
        return chat(7, 3)

    assert inspect.iscoroutinefunction(ask)
    assert (await ask())["usage"]["prompt_tokens"] == 7
    [row] = logs(store, "shapes-async")
    assert (row["input_tokens"], row["output_tokens"]) == (7, 3)
    assert telemetry.span().name == "chat gpt-4o"


def test_generator_function_settles_once(store: SQLiteStore, telemetry: Telemetry) -> None:
    @track_costs(project="shapes-gen")
    def stream() -> Iterator[dict[str, Any]]:
        yield from chunks(30, 3)

    assert inspect.isgeneratorfunction(stream)
    items = list(stream())
    assert len(items) == 4
    [row] = logs(store, "shapes-gen")
    assert (row["input_tokens"], row["output_tokens"]) == (30, 3)
    assert len(telemetry.requests()) == 1


async def test_async_generator_function_settles_once(store: SQLiteStore) -> None:
    @track_costs(project="shapes-agen")
    async def stream() -> AsyncIterator[dict[str, Any]]:
        for chunk in chunks(40, 3):
            yield chunk

    assert inspect.isasyncgenfunction(stream)
    items = [chunk async for chunk in stream()]
    assert len(items) == 4
    [row] = logs(store, "shapes-agen")
    assert (row["input_tokens"], row["output_tokens"]) == (40, 3)


def test_returned_stream_is_proxied_and_keeps_its_api(store: SQLiteStore) -> None:
    inner = ClosableStream(chunks(50, 3))

    @track_costs(project="shapes-stream")
    def open_stream() -> ClosableStream:
        return inner

    stream: Any = open_stream()  # a proxy: the stream's own API, and a context manager
    assert stream is not inner
    assert stream.response == "raw-http-response"  # delegated attribute
    assert logs(store, "shapes-stream") == []  # nothing settled before the stream ends
    with stream as entered:
        consumed = list(entered)
    assert len(consumed) == 4
    assert inner.closed
    [row] = logs(store, "shapes-stream")
    assert (row["input_tokens"], row["output_tokens"]) == (50, 3)


def test_stream_broken_off_settles_once_with_estimate(store: SQLiteStore) -> None:
    @track_costs(project="shapes-break")
    def open_stream() -> ClosableStream:
        return ClosableStream(chunks(50, 3))

    stream = open_stream()
    for _ in stream:
        break
    with pytest.warns(UserWarning, match="did not report usage"):
        stream.close()
    stream.close()
    [row] = logs(store, "shapes-break")
    assert row["estimated"]
    assert row["output_tokens"] >= 1


def test_stream_never_iterated_is_recorded_on_collection(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    @track_costs(project="shapes-gc")
    def open_stream(prompt: str) -> ClosableStream:
        return ClosableStream(chunks())

    stream = open_stream("a prompt of some length to estimate input tokens from")
    del stream
    gc.collect()
    from llm_toll._worker import worker

    assert worker.drain(10)  # the finaliser settles in the worker thread
    [row] = logs(store, "shapes-gc")
    assert row["estimated"] and row["input_tokens"] > 0
    assert len(telemetry.requests()) == 1


async def test_coroutine_returning_async_stream(store: SQLiteStore) -> None:
    inner = AsyncClosableStream(chunks(60, 3))

    @track_costs(project="shapes-astream")
    async def get_stream() -> AsyncClosableStream:
        return inner

    stream = await get_stream()
    items = [chunk async for chunk in stream]
    assert len(items) == 4
    [row] = logs(store, "shapes-astream")
    assert (row["input_tokens"], row["output_tokens"]) == (60, 3)
    await stream.close()  # closing after exhaustion does not settle twice
    assert inner.closed
    assert len(logs(store, "shapes-astream")) == 1


def test_exceptions_pass_through_and_mark_the_span(
    store: SQLiteStore, telemetry: Telemetry
) -> None:
    class Boom(Exception):
        pass

    error = Boom("no")

    @track_costs(project="shapes-error")
    def explode() -> None:
        raise error

    with pytest.raises(Boom) as raised:
        explode()
    assert raised.value is error
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "Boom"
    assert logs(store, "shapes-error") == []


async def test_async_exceptions_pass_through(store: SQLiteStore, telemetry: Telemetry) -> None:
    @track_costs(project="shapes-aerror")
    async def explode() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await explode()
    assert telemetry.span().status.status_code is StatusCode.ERROR


def test_inner_spans_nest_under_the_call_span(store: SQLiteStore, telemetry: Telemetry) -> None:
    tracer = trace.get_tracer("app")

    @track_costs(project="shapes-nest")
    def ask() -> dict[str, Any]:
        with tracer.start_as_current_span("http request"):
            return chat()

    ask()
    spans = {span.name: span for span in telemetry.spans()}
    # The function's own code runs in its run: its spans nest under the run's span, as the
    # span of the request recorded from its return value does.
    [run] = telemetry.runs()
    inner, request = spans["http request"], spans["chat gpt-4o"]
    assert inner.parent is not None and request.parent is not None and run.context is not None
    assert inner.parent.span_id == run.context.span_id == request.parent.span_id


def test_generator_send_and_return_value_pass_through(store: SQLiteStore) -> None:
    @track_costs(project="shapes-send")
    def echo() -> Any:
        received = yield chunks()[0]
        yield {"echo": received}
        return "done"

    gen = echo()
    next(gen)
    assert gen.send("ping") == {"echo": "ping"}
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"


def test_generator_abandoned_half_way_settles_on_collection(store: SQLiteStore) -> None:
    @track_costs(project="shapes-gen-gc")
    def stream() -> Iterator[dict[str, Any]]:
        yield from chunks(30, 3)

    generators = [stream()]
    next(generators[0])
    assert logs(store, "shapes-gen-gc") == []
    with pytest.warns(UserWarning, match="did not report usage"):
        generators.clear()  # the last reference goes: the generator's finaliser closes it
    [row] = logs(store, "shapes-gen-gc")
    assert row["estimated"]


async def test_async_generator_abandoned_half_way_settles(store: SQLiteStore) -> None:
    @track_costs(project="shapes-agen-gc")
    async def stream() -> AsyncGenerator[dict[str, Any], None]:
        for chunk in chunks(40, 3):
            yield chunk

    agen = stream()
    await agen.__anext__()
    with pytest.warns(UserWarning, match="did not report usage"):
        await agen.aclose()  # what asyncio's finaliser hook does for a dropped generator
    [row] = logs(store, "shapes-agen-gc")
    assert row["estimated"]
