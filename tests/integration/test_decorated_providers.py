"""@track_costs around the real openai, anthropic and google-genai clients, every shape.

The replay server records the usage it sent; each test compares the ledger with it and
the cost with genai-prices' own calculation of the same usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import genai_prices
import pytest

from llm_toll import track_costs
from llm_toll._budget.money import usd_to_nanos
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from llm_toll.usage import Usage
from tests.support.otel import Telemetry

MESSAGES = [{"role": "user", "content": "Name three primary colours, briefly please."}]


def genai_prices_nanos(usage: Usage, model: str, provider: str) -> int:
    priced = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens,
            cache_write_tokens=usage.cache_creation_input_tokens,
        ),
        model,
        provider_id=provider,
    )
    return usd_to_nanos(priced.total_price)


def assert_recorded(store: SQLiteStore, project: str, replay: ReplayServer, provider: str) -> None:
    """Exactly one ledger row, equal to what the server sent, priced as genai-prices does."""
    rows = store.get_usage_logs(project)
    assert len(rows) == 1, rows
    [row] = rows
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    assert row["cache_read_input_tokens"] == sent.cache_read_input_tokens
    assert row["reasoning_output_tokens"] == sent.reasoning_output_tokens
    assert not row["estimated"]
    assert row["cost_nanos"] == genai_prices_nanos(sent, row["model"], provider)
    assert row["cost_nanos"] > 0


# -- OpenAI -------------------------------------------------------------------------------


def test_openai_sync_chat(store: SQLiteStore, replay: ReplayServer, openai_client: Any,
                          telemetry: Telemetry) -> None:  # fmt: skip
    replay.script(cached_tokens=64, reasoning_tokens=32)

    @track_costs(project="oa-sync", max_budget=1.0)
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    response = ask()
    assert response.choices[0].message.content
    assert_recorded(store, "oa-sync", replay, "openai")
    span = telemetry.span()
    assert span.attributes is not None
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.response.id"] == response.id
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 64
    assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 32
    assert span.name == f"chat {response.model}"


async def test_openai_async_chat(store: SQLiteStore, replay: ReplayServer,
                                 async_openai_client: Any) -> None:  # fmt: skip
    @track_costs(project="oa-async", max_budget=5.0)
    async def async_chat(text: str) -> Any:
        response = await async_openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": text}]
        )
        return response

    await async_chat("hello there")
    assert_recorded(store, "oa-async", replay, "openai")


async def test_openai_async_generator_stream(store: SQLiteStore, replay: ReplayServer,
                                             async_openai_client: Any) -> None:  # fmt: skip
    @track_costs(project="oa-agen")
    async def async_stream(text: str) -> AsyncIterator[Any]:
        stream = await async_openai_client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            yield chunk

    chunks = [chunk async for chunk in async_stream("tell me a story")]
    assert len(chunks) > 2
    assert_recorded(store, "oa-agen", replay, "openai")


async def test_openai_coroutine_returning_stream(store: SQLiteStore, replay: ReplayServer,
                                                 async_openai_client: Any) -> None:  # fmt: skip
    @track_costs(project="oa-getstream")
    async def get_stream(text: str) -> Any:
        return await async_openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": text}], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip

    stream = await get_stream("tell me a story")
    async with stream:
        pieces = [chunk async for chunk in stream]
    assert pieces
    assert stream.response.status_code == 200  # the SDK stream's own API, delegated
    assert_recorded(store, "oa-getstream", replay, "openai")


def test_openai_sync_stream_without_usage_is_estimated(store: SQLiteStore, replay: ReplayServer,
                                                       openai_client: Any) -> None:  # fmt: skip
    @track_costs(project="oa-nousage")
    def get_stream() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                     stream=True)  # fmt: skip

    with pytest.warns(UserWarning, match="include_usage"):
        for _ in get_stream():
            pass
    [row] = store.get_usage_logs("oa-nousage")
    assert row["estimated"] and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["cost_nanos"] > 0  # never a silent zero


def test_openai_responses_api(store: SQLiteStore, replay: ReplayServer, openai_client: Any) -> None:
    replay.script(cached_tokens=10, reasoning_tokens=50)

    @track_costs(project="oa-responses")
    def respond() -> Any:
        return openai_client.responses.create(model="gpt-4o", input="Say hi.")

    respond()
    assert_recorded(store, "oa-responses", replay, "openai")


def test_openai_sync_generator(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="oa-gen")
    def stream() -> Iterator[str]:
        with openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ) as chunks:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    # The generator yields only text, but the stream it reads was hooked: the usage the
    # server reported is recorded, exactly, not estimated from the text.
    text = "".join(stream())
    assert text
    [row] = store.get_usage_logs("oa-gen")
    assert not row["estimated"]
    sent = replay.last.tokens
    assert sent is not None
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)


# -- Anthropic ----------------------------------------------------------------------------


def test_anthropic_sync_message(store: SQLiteStore, replay: ReplayServer, anthropic_client: Any,
                                telemetry: Telemetry) -> None:  # fmt: skip
    replay.script(cached_tokens=100, cache_creation_tokens=50)

    @track_costs(project="an-sync")
    def ask() -> Any:
        return anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES
        )

    ask()
    assert_recorded(store, "an-sync", replay, "anthropic")
    [row] = store.get_usage_logs("an-sync")
    assert row["cache_creation_input_tokens"] == 50
    span = telemetry.span()
    assert span.attributes is not None
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 50


async def test_anthropic_async_stream(store: SQLiteStore, replay: ReplayServer,
                                      async_anthropic_client: Any) -> None:  # fmt: skip
    replay.script(cached_tokens=20)

    @track_costs(project="an-astream")
    async def get_stream() -> Any:
        return await async_anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES, stream=True
        )

    events = [event async for event in await get_stream()]
    assert events[0].type == "message_start"
    assert_recorded(store, "an-astream", replay, "anthropic")


def test_anthropic_stream_broken_off_records_what_was_seen(
    store: SQLiteStore, replay: ReplayServer, anthropic_client: Any
) -> None:
    @track_costs(project="an-break")
    def get_stream() -> Any:
        return anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES, stream=True
        )

    stream = get_stream()
    for event in stream:
        if event.type == "content_block_delta":
            break
    stream.close()
    [row] = store.get_usage_logs("an-break")
    sent = replay.last.tokens
    assert sent is not None
    # message_start already reported the input; output is what was counted so far.
    assert row["input_tokens"] == sent.input_tokens


# -- Gemini -------------------------------------------------------------------------------


async def test_gemini_sync_and_async(store: SQLiteStore, replay: ReplayServer,
                                     gemini_client: Any) -> None:  # fmt: skip
    replay.script(reasoning_tokens=40)

    @track_costs(project="ge-sync")
    def ask() -> Any:
        return gemini_client.models.generate_content(model="gemini-2.5-flash", contents="Hi!")

    ask()
    assert_recorded(store, "ge-sync", replay, "google")

    @track_costs(project="ge-async")
    async def aask() -> Any:
        return await gemini_client.aio.models.generate_content(
            model="gemini-2.5-flash", contents="Hi!"
        )

    await aask()
    assert_recorded(store, "ge-async", replay, "google")


async def test_gemini_streams(store: SQLiteStore, replay: ReplayServer, gemini_client: Any) -> None:
    @track_costs(project="ge-stream")
    def get_stream() -> Any:
        return gemini_client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Tell me a story."
        )

    assert list(get_stream())
    assert_recorded(store, "ge-stream", replay, "google")

    @track_costs(project="ge-astream")
    async def aget_stream() -> Any:
        return await gemini_client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Tell me a story."
        )

    assert [chunk async for chunk in await aget_stream()]
    assert_recorded(store, "ge-astream", replay, "google")


# -- bad input from a provider -------------------------------------------------------------


@pytest.mark.parametrize(
    "usage",
    [
        None,
        {"prompt_tokens": -5},
        {"prompt_tokens": 12.5},
        {"completion_tokens": 10**12},
        "garbage",
    ],
    ids=["missing", "negative", "fractional", "absurd", "not-an-object"],
)
def test_malformed_usage_warns_returns_and_keeps_the_store(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, usage: Any
) -> None:
    @track_costs(project="oa-bad")
    def ask(messages: list[dict[str, str]]) -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=messages)

    replay.script(usage=usage)
    with pytest.warns(UserWarning, match="usage"):
        response = ask(messages=MESSAGES)
    assert response.choices[0].message.content  # the call's own result is returned
    [row] = store.get_usage_logs("oa-bad")
    assert row["estimated"]  # estimated, flagged, never a silent zero
    assert 0 < row["input_tokens"] < 1000 and row["cost_nanos"] > 0


def test_http_error_passes_through_unrecorded(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    import openai

    @track_costs(project="oa-error")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    replay.script(status=429)
    with pytest.raises(openai.RateLimitError):
        ask()
    assert store.get_usage_logs("oa-error") == []
    span = telemetry.span()
    assert span.attributes is not None and span.attributes["error.type"] == "RateLimitError"
