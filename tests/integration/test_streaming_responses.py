"""``with_streaming_response`` (and ``with_raw_response`` with ``stream=True``) of the real
openai and anthropic clients: the response comes back before its body is read, and the
caller reads it however it likes. Each way of reading, sync and async, streamed or not, is
one ledger row priced from what the server sent; a body read in part, or not at all, is one
row too, and gives its strict reservation back."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError
from llm_toll._hooks._body_tee import _Lines
from llm_toll._worker import worker
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from llm_toll.store._time import utc_now
from tests.integration.test_decorated_providers import MESSAGES
from tests.integration.test_hooks import INCLUDE_USAGE, assert_rows
from tests.integration.test_strict_requests import LONG_REPLY

READS = [
    "parse",
    "read",
    "text",
    "json",
    "iter_bytes",
    "iter_bytes_small",
    "iter_text",
    "iter_lines",
]
CLAUDE = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": MESSAGES}


def streaming(client: Any, provider: str, stream: bool, **extra: Any) -> Any:
    """The context manager of one ``with_streaming_response`` request."""
    if provider == "openai":
        options = {"stream": True, **INCLUDE_USAGE} if stream else {}
        return client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES, **options, **extra
        )
    return client.messages.with_streaming_response.create(
        **{**CLAUDE, **extra}, **({"stream": True} if stream else {})
    )


def read_whole(response: Any, how: str) -> None:
    if how == "parse":
        parsed = response.parse()
        if not hasattr(parsed, "usage"):  # a stream of chunks or events
            for _ in parsed:
                pass
    elif how in ("read", "text", "json"):
        getattr(response, how)()
    elif how == "iter_bytes_small":  # lines and CRLFs cut across chunks
        for _ in response.iter_bytes(chunk_size=5):
            pass
    else:
        for _ in getattr(response, how)():
            pass


async def aread_whole(response: Any, how: str) -> None:
    if how == "parse":
        parsed = await response.parse()
        if not hasattr(parsed, "usage"):
            async for _ in parsed:
                pass
    elif how in ("read", "text", "json"):
        await getattr(response, how)()
    else:
        chunks: AsyncIterator[Any] = (
            response.iter_bytes(chunk_size=5)
            if how == "iter_bytes_small"
            else getattr(response, how)()
        )
        async for _ in chunks:
            pass


def client_of(request: pytest.FixtureRequest, provider: str) -> Any:
    """A sync client (async fixtures cannot be asked for by name inside an async test)."""
    return request.getfixturevalue(f"{provider}_client")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("how", READS)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_every_read_is_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    request: pytest.FixtureRequest,
    provider: str,
    how: str,
    stream: bool,
) -> None:
    client = client_of(request, provider)
    project = f"sr-{provider}-{how}-{stream}"
    with llm_toll.run(project), streaming(client, provider, stream) as response:
        if how == "json" and stream:  # a body of events is no JSON: the SDK says so
            with pytest.raises(json.JSONDecodeError):
                read_whole(response, how)
        else:
            read_whole(response, how)
    assert len(replay.requests) == 1
    assert_rows(store, project, replay, provider)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("how", READS)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_every_async_read_is_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    async_openai_client: Any,
    async_anthropic_client: Any,
    provider: str,
    how: str,
    stream: bool,
) -> None:
    client = async_openai_client if provider == "openai" else async_anthropic_client
    project = f"asr-{provider}-{how}-{stream}"
    async with llm_toll.run(project), streaming(client, provider, stream) as response:
        if how == "json" and stream:
            with pytest.raises(json.JSONDecodeError):
                await aread_whole(response, how)
        else:
            await aread_whole(response, how)
    assert len(replay.requests) == 1
    assert_rows(store, project, replay, provider)


def test_a_body_read_then_parsed_is_recorded_once(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    with (
        llm_toll.run("sr-read-parse"),
        streaming(openai_client, "openai", stream=True) as response,
    ):
        response.read()
        chunks = list(response.parse())  # the content kept, parsed again
    assert chunks[-1].usage is not None
    assert_rows(store, "sr-read-parse", replay, "openai")


@pytest.mark.parametrize("then_iterated", [False, True], ids=["left", "iterated"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_body_parsed_then_read_another_way_is_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    request: pytest.FixtureRequest,
    provider: str,
    then_iterated: bool,
) -> None:
    """The SDK's stream made, not iterated, and the body read with ``read()``: that read is
    what is recorded, exactly; the stream iterated afterwards (over the content kept)
    records nothing more."""
    client = client_of(request, provider)
    project = f"sr-parse-read-{provider}-{then_iterated}"
    with llm_toll.run(project), streaming(client, provider, stream=True) as response:
        parsed = response.parse()
        response.read()
        if then_iterated:
            assert list(parsed)
        del parsed
    gc.collect()  # the stream's proxy, had it not been finished, would record now
    assert worker.drain(10)
    assert_rows(store, project, replay, provider)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_async_body_parsed_then_read_another_way_is_recorded_once(
    store: SQLiteStore,
    replay: ReplayServer,
    async_openai_client: Any,
    async_anthropic_client: Any,
    provider: str,
) -> None:
    client = async_openai_client if provider == "openai" else async_anthropic_client
    project = f"asr-parse-read-{provider}"
    async with llm_toll.run(project), streaming(client, provider, stream=True) as response:
        parsed = await response.parse()
        await response.read()
        del parsed
    gc.collect()
    assert worker.drain(10)
    assert_rows(store, project, replay, provider)


def test_a_raw_stream_read_as_lines_is_recorded(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    """``with_raw_response``: the body read through the HTTP response itself, the raw
    response dropped before its first line is read."""
    with llm_toll.run("sr-raw-lines"):
        lines = list(
            openai_client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE
            ).http_response.iter_lines()
        )
    assert "data: [DONE]" in lines
    assert_rows(store, "sr-raw-lines", replay, "openai")


# -- bodies not read to their end -------------------------------------------------------------


def assert_one_estimated_row_and_nothing_reserved(store: SQLiteStore, project: str) -> None:
    [row] = store.get_usage_logs(project)
    assert row["estimated"]  # as a broken stream is
    assert row["cost_nanos"] > 0
    assert store.get_reserved(project, None, utc_now()) == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_body_read_in_part_is_recorded_and_frees_its_reservation(
    store: SQLiteStore, replay: ReplayServer, request: pytest.FixtureRequest, provider: str
) -> None:
    client = client_of(request, provider)
    project = f"sr-part-{provider}"
    replay.script(text=LONG_REPLY)
    with (
        llm_toll.run(project, max_budget=1.0, strict=True),
        streaming(client, provider, stream=True) as response,
    ):
        lines: Iterator[str] = response.iter_lines()
        next(lines)
        next(lines)
        # Left here: the block closes the response, unread to its end.
    assert worker.drain(10)  # the generator, collected, may have handed the record over
    assert_one_estimated_row_and_nothing_reserved(store, project)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_async_body_read_in_part_is_recorded_and_frees_its_reservation(
    store: SQLiteStore,
    replay: ReplayServer,
    async_openai_client: Any,
    async_anthropic_client: Any,
    provider: str,
) -> None:
    client = async_openai_client if provider == "openai" else async_anthropic_client
    project = f"asr-part-{provider}"
    replay.script(text=LONG_REPLY)
    async with (
        llm_toll.run(project, max_budget=1.0, strict=True),
        streaming(client, provider, stream=True) as response,
    ):
        async for _ in response.iter_bytes(chunk_size=16):
            break
    assert_one_estimated_row_and_nothing_reserved(store, project)


def test_a_body_never_read_nor_closed_is_recorded_when_collected(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    with llm_toll.run("sr-dropped", max_budget=1.0, strict=True):
        response = openai_client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True, **INCLUDE_USAGE
        )
        assert store.get_reserved("sr-dropped", None, utc_now()) > 0  # held while in flight
        del response
        gc.collect()
    assert worker.drain(10)  # the finaliser hands the record to the worker
    assert_one_estimated_row_and_nothing_reserved(store, "sr-dropped")


# -- strict: a body past its reservation --------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_body_past_its_reservation_is_cut_and_recorded(
    store: SQLiteStore, replay: ReplayServer, request: pytest.FixtureRequest, provider: str
) -> None:
    client = client_of(request, provider)
    project = f"sr-cut-{provider}"
    replay.script(text=LONG_REPLY, ignore_cap=True)  # a provider that ignores the cap
    lines = 0
    with (  # noqa: PT012 - the error comes mid-body, from the loop
        pytest.raises(BudgetExceededError, match="ran past"),
        llm_toll.run(project, max_budget=1.0, strict=True),
        streaming(client, provider, stream=True, max_tokens=5) as response,
    ):
        for _ in response.iter_lines():
            lines += 1
    assert lines < 60  # cut long before the 60 words the provider sent
    [row] = store.get_usage_logs(project)
    assert row["output_tokens"] > 5  # what came before the cut is recorded
    assert row["cost_nanos"] > 0
    assert store.get_reserved(project, None, utc_now()) == 0


async def test_an_async_body_past_its_reservation_is_cut_and_recorded(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    replay.script(text=LONG_REPLY, ignore_cap=True)
    with pytest.raises(BudgetExceededError, match="ran past"):
        async with (
            llm_toll.run("asr-cut", max_budget=1.0, strict=True),
            streaming(async_openai_client, "openai", stream=True, max_tokens=5) as response,
        ):
            await response.text()
    [row] = store.get_usage_logs("asr-cut")
    assert row["output_tokens"] > 5
    assert store.get_reserved("asr-cut", None, utc_now()) == 0


# -- the lines of an event stream ----------------------------------------------------------------

BODY = b"event: a\r\ndata: 1\r\n\r\ndata: 2\n\ndata: 3\r\rdata: 4"


@pytest.mark.parametrize("cut", range(len(BODY) + 1))
def test_lines_are_the_same_wherever_the_body_is_cut(cut: int) -> None:
    lines = _Lines()
    seen = [*lines.feed(BODY[:cut]), *lines.feed(BODY[cut:]), *lines.finish()]
    assert seen == [b"event: a", b"data: 1", b"", b"data: 2", b"", b"data: 3", b"", b"data: 4"]
