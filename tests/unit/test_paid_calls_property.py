"""A paid call is never turned into an exception (property-based).

Whatever a decorated function hands back (a response of any shape, usage fields of any
type, objects whose attributes raise, stream items of any kind) and whatever its
``extract_usage=`` returns or raises, for sync, async, generator and streamed functions:

- the caller gets the function's value (its very object, or the very items it yielded), or
  the function's own exception, never anything else;
- llm_toll only warns, with its own warning categories;
- the ledger (a real SQLite store) holds exactly one row for the call; none only for a
  plain result that is no LLM response, that nothing failed to read, or for a function that
  raised instead of returning.
"""

from __future__ import annotations

import asyncio
import itertools
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from llm_toll import track_costs
from llm_toll._worker import worker
from llm_toll.exceptions import (
    AccountingWarning,
    PricingMatrixOutdatedWarning,
    TelemetryWarning,
    UsageWarning,
)
from llm_toll.store import SQLiteStore
from tests.support.garbage import (
    EXTRACTORS,
    RESULTS,
    STREAM_ITEMS,
    Extractor,
    Hostile,
    HostileDict,
)

LLM_TOLL_WARNINGS = (
    UsageWarning,
    AccountingWarning,
    TelemetryWarning,
    PricingMatrixOutdatedWarning,
)
# Moderate counts, the same examples on every run: well under a minute on a slow machine.
EXAMPLES = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_projects = itertools.count()


class OwnError(Exception):
    """The wrapped function's own exception."""


def _project() -> str:
    return f"paid-{next(_projects)}"


def _decorate(project: str, extractor: Extractor | None) -> Callable[[Any], Any]:
    return track_costs(project=project, max_budget=1_000.0, extract_usage=extractor)


def _called(run: Callable[[], Any]) -> tuple[Any, list[warnings.WarningMessage]]:
    """What the call gave the caller (a value or an exception), and the warnings given,
    the worker's included (async writes end there)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome: Any = run()
        except Exception as error:  # anything else (KeyboardInterrupt...) stops the test
            outcome = error
        finally:
            worker.wait_idle()
    return outcome, caught


def _only_our_warnings(caught: list[warnings.WarningMessage]) -> None:
    strangers = [w for w in caught if not issubclass(w.category, LLM_TOLL_WARNINGS)]
    assert not strangers, [f"{w.category.__name__}: {w.message}" for w in strangers]


def _draw_extractor(data: st.DataObject) -> Extractor | None:
    kind = data.draw(st.sampled_from(sorted(EXTRACTORS)), label="extract_usage")
    extractor = data.draw(EXTRACTORS[kind], label=kind)
    returned = "" if extractor is None else f" {type(extractor.returned).__name__}"
    event(f"extract_usage: {kind}{returned if kind == 'garbage' else ''}")
    return extractor


def _the_row(store: SQLiteStore, project: str) -> dict[str, Any]:
    rows = store.get_usage_logs(project)
    assert len(rows) == 1, rows
    return rows[0]


def _recorded(is_response: bool, extractor: Extractor | None) -> bool:
    """Every returned call is recorded but one whose result is no LLM response, unless an
    extractor was there to read it (and gave usage, or failed: a call all the same)."""
    return is_response or (extractor is not None and (extractor.failing or extractor.valid))


@pytest.mark.parametrize("family", sorted(RESULTS))
@pytest.mark.parametrize("kind", ["sync", "async"])
@EXAMPLES
@given(data=st.data(), raises=st.booleans())
def test_a_plain_call_returns_its_value_and_is_recorded_once(
    store: SQLiteStore, kind: str, family: str, data: st.DataObject, raises: bool
) -> None:
    values, is_response = RESULTS[family]
    value = data.draw(values, label="value")
    extractor = _draw_extractor(data)
    event(f"result: {type(value).__name__}")
    project = _project()
    own = OwnError("the function's own")

    def body() -> Any:
        if raises:
            raise own
        return value

    if kind == "sync":
        call: Callable[[], Any] = _decorate(project, extractor)(body)
    else:

        async def async_body() -> Any:
            return body()

        ask = _decorate(project, extractor)(async_body)

        def call() -> Any:
            return asyncio.run(ask())

    outcome, caught = _called(call)

    _only_our_warnings(caught)
    if raises:
        assert outcome is own
        assert store.get_usage_logs(project) == []
        return
    assert outcome is value
    if not _recorded(is_response, extractor):
        assert store.get_usage_logs(project) == []
        return
    row = _the_row(store, project)
    if extractor is not None and extractor.valid:
        assert (row["input_tokens"], row["output_tokens"]) == extractor.tokens
        assert not row["estimated"]
    elif isinstance(value, (Hostile, HostileDict)):
        assert row["estimated"]  # nothing could be read: usage estimated, and flagged


class Stream:
    """An SDK-like stream: iterated, closed; raises ``error`` after its items if given."""

    def __init__(self, items: list[Any], error: BaseException | None) -> None:
        self._items = iter(items)
        self._error = error

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        for item in self._items:
            return item
        if self._error is not None:
            raise self._error
        raise StopIteration

    def close(self) -> None:
        pass


class AsyncStream:
    def __init__(self, items: list[Any], error: BaseException | None) -> None:
        self._stream = Stream(items, error)

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._stream)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        pass


def _streamed_call(kind: str, ask: Callable[[], Any]) -> Callable[[], list[Any]]:
    """The caller's side of one streamed call: every item it reads."""
    if kind in ("generator", "stream"):
        return lambda: list(ask())

    async def read() -> list[Any]:
        stream = await ask() if kind == "async-stream" else ask()
        return [item async for item in stream]

    return lambda: asyncio.run(read())


def _streamed_function(
    kind: str, items: list[Any], error: BaseException | None
) -> Callable[[], Any]:
    def generator() -> Iterator[Any]:
        yield from items
        if error is not None:
            raise error

    async def async_generator() -> AsyncIterator[Any]:
        for item in items:
            yield item
        if error is not None:
            raise error

    def stream() -> Stream:
        return Stream(items, error)

    async def async_stream() -> AsyncStream:
        return AsyncStream(items, error)

    functions: dict[str, Callable[[], Any]] = {
        "generator": generator,
        "async-generator": async_generator,
        "stream": stream,
        "async-stream": async_stream,
    }
    return functions[kind]


@pytest.mark.parametrize("kind", ["generator", "async-generator", "stream", "async-stream"])
@EXAMPLES
@given(data=st.data(), items=st.lists(STREAM_ITEMS, max_size=4), raises=st.booleans())
def test_a_streamed_call_yields_its_items_and_is_recorded_once(
    store: SQLiteStore, kind: str, data: st.DataObject, items: list[Any], raises: bool
) -> None:
    extractor = _draw_extractor(data)
    project = _project()
    own = OwnError("the stream's own") if raises else None
    ask = _decorate(project, extractor)(_streamed_function(kind, items, own))

    outcome, caught = _called(_streamed_call(kind, ask))

    _only_our_warnings(caught)
    if own is not None:
        assert outcome is own
    else:
        assert isinstance(outcome, list)
        assert len(outcome) == len(items)
        assert all(got is sent for got, sent in zip(outcome, items, strict=True))
    # A stream is recorded from what it showed, also when it broke off.
    row = _the_row(store, project)
    if items and extractor is not None and extractor.valid:
        assert (row["input_tokens"], row["output_tokens"]) == extractor.tokens
