"""StreamAccumulator over the dict forms of each provider's stream."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from llm_toll.usage import ExtractedUsage, StreamAccumulator, Usage, UsageError


def feed(*items: object) -> StreamAccumulator:
    accumulator = StreamAccumulator()
    for item in items:
        accumulator.add(item)
    return accumulator


def chat_chunk(content: str | None = None, usage: Any = None) -> dict[str, Any]:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": choices,
        "usage": usage,
    }


def test_openai_chat_chunks() -> None:
    accumulator = feed(
        chat_chunk("Hel"),
        chat_chunk("lo"),
        chat_chunk(
            usage={
                "prompt_tokens": 9,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 4},
            }
        ),
    )
    assert accumulator.text == "Hello"
    assert accumulator.chunks == 3
    assert accumulator.result() == ExtractedUsage(
        Usage(input_tokens=9, output_tokens=2, cache_read_input_tokens=4),
        model="gpt-4o-mini",
        provider="openai",
        operation="chat",
        response_id="chatcmpl-9",
    )


def test_chat_chunk_look_alikes_without_object() -> None:
    """Objects (or dicts) with ``choices`` and ``model`` but no ``object``: chat chunks."""

    def chunk(content: str | None, usage: object = None) -> SimpleNamespace:
        choices = (
            [] if content is None else [SimpleNamespace(delta=SimpleNamespace(content=content))]
        )
        return SimpleNamespace(model="gpt-4o", choices=choices, usage=usage)

    usage = SimpleNamespace(prompt_tokens=15, completion_tokens=10)
    accumulator = feed(chunk("Hello"), chunk(" world"), chunk(None, usage))
    assert accumulator.text == "Hello world"
    assert accumulator.result() == ExtractedUsage(
        Usage(input_tokens=15, output_tokens=10),
        model="gpt-4o",
        provider="openai",
        operation="chat",
    )
    as_dicts = feed(
        {"model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    )
    assert as_dicts.result() == ExtractedUsage(
        Usage(input_tokens=1, output_tokens=2), model="gpt-4o", provider="openai", operation="chat"
    )


def test_openai_chunks_without_usage() -> None:
    accumulator = feed(chat_chunk("Hi"), chat_chunk(" there"))
    assert accumulator.result() is None
    assert accumulator.text == "Hi there"
    assert accumulator.model == "gpt-4o-mini"


def test_openai_responses_events() -> None:
    response = {"id": "resp_7", "object": "response", "model": "gpt-4.1", "usage": None}
    completed = {
        **response,
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 5},
        },
    }
    accumulator = feed(
        {"type": "response.created", "response": response, "sequence_number": 0},
        {"type": "response.output_text.delta", "delta": "Tides ", "sequence_number": 1},
        {"type": "response.output_text.delta", "delta": "rise.", "sequence_number": 2},
        {"type": "response.output_text.done", "text": "Tides rise.", "sequence_number": 3},
        {"type": "response.completed", "response": completed, "sequence_number": 4},
    )
    assert accumulator.text == "Tides rise."
    assert accumulator.result() == ExtractedUsage(
        Usage(input_tokens=50, output_tokens=20, reasoning_output_tokens=5),
        model="gpt-4.1",
        provider="openai",
        operation="chat",
        response_id="resp_7",
    )


def anthropic_events(delta_usage: dict[str, Any]) -> list[dict[str, Any]]:
    start_usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 500,
        "cache_creation_input_tokens": 0,
        "output_tokens": 1,
    }
    return [
        {
            "type": "message_start",
            "message": {
                "id": "msg_5",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [],
                "usage": start_usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        # the MessageStream helper's derived event: must not be counted twice
        {"type": "text", "text": "Hi", "snapshot": "Hi"},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        {"type": "message_stop"},
    ]


def test_anthropic_events() -> None:
    accumulator = feed(*anthropic_events({"output_tokens": 42}))
    assert accumulator.text == "Hi"
    assert accumulator.result() == ExtractedUsage(
        Usage(input_tokens=510, output_tokens=42, cache_read_input_tokens=500),
        model="claude-haiku-4-5",
        provider="anthropic",
        operation="chat",
        response_id="msg_5",
    )


def test_anthropic_delta_counts_are_cumulative_and_win() -> None:
    accumulator = feed(
        *anthropic_events({"output_tokens": 42, "input_tokens": 12, "cache_read_input_tokens": 600})
    )
    found = accumulator.result()
    assert found is not None
    assert found.usage == Usage(input_tokens=612, output_tokens=42, cache_read_input_tokens=600)


def test_anthropic_stream_cut_after_start_is_partial_and_estimated() -> None:
    events = anthropic_events({"output_tokens": 42})
    accumulator = feed(*events[:3])
    accumulator.add(
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x" * 40}}
    )
    found = accumulator.result()
    assert found is not None
    assert found.estimated
    # the exact input from message_start; the output estimated from the text (42 chars)
    assert found.usage == Usage(input_tokens=510, output_tokens=11, cache_read_input_tokens=500)


def gemini_chunk(text: str, usage: dict[str, Any] | None, finish: bool = False) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = "STOP"
    chunk: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r-1",
    }
    if usage is not None:
        chunk["usageMetadata"] = usage
    return chunk


def test_gemini_chunks_last_usage_wins() -> None:
    accumulator = feed(
        gemini_chunk("Blue ", {"promptTokenCount": 8, "totalTokenCount": 8}),
        gemini_chunk(
            "light.",
            {"promptTokenCount": 8, "candidatesTokenCount": 3, "thoughtsTokenCount": 5},
            True,
        ),
    )
    assert accumulator.text == "Blue light."
    assert accumulator.result() == ExtractedUsage(
        Usage(input_tokens=8, output_tokens=8, reasoning_output_tokens=5),
        model="gemini-2.5-flash",
        provider="gcp.gemini",
        operation="generate_content",
        response_id="r-1",
    )


def test_gemini_stream_cut_before_last_chunk_is_estimated() -> None:
    accumulator = feed(gemini_chunk("Blue light scatters", {"promptTokenCount": 8}))
    found = accumulator.result()
    assert found is not None
    assert found.estimated
    assert found.usage == Usage(input_tokens=8, output_tokens=5)


def test_malformed_usage_keeps_streaming_and_raises_at_result() -> None:
    accumulator = feed(
        chat_chunk("Hi"), chat_chunk(usage={"prompt_tokens": -5, "completion_tokens": 1})
    )
    assert accumulator.text == "Hi"
    with pytest.raises(
        UsageError, match=r"^openai chat\.completion stream: usage\.prompt_tokens is negative"
    ):
        accumulator.result()

    accumulator = feed(*anthropic_events({"output_tokens": "12"}))
    with pytest.raises(UsageError, match=r"^anthropic message stream: usage\.output_tokens"):
        accumulator.result()


def test_add_never_raises() -> None:
    class Exploding:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(name)

    accumulator = feed(
        None,
        42,
        b"bytes",
        ["a", "list"],
        Exploding(),
        {"object": "chat.completion.chunk", "choices": "not a list", "usage": None},
        {"type": "message_start", "message": None},
        {"type": "content_block_delta", "delta": None},
        {"candidates": None, "usageMetadata": None},
        chat_chunk("ok"),
    )
    assert accumulator.chunks == 10
    assert accumulator.text == "ok"
    assert accumulator.result() is None


def test_text_items() -> None:
    accumulator = feed("Hello", ", ", "world")
    assert accumulator.text == "Hello, world"
    assert accumulator.result() is None


def test_override_wins_and_is_completed_from_the_stream() -> None:
    accumulator = feed(chat_chunk("Hi", usage={"prompt_tokens": 3, "completion_tokens": 1}))
    accumulator.override(ExtractedUsage(Usage(input_tokens=100, output_tokens=7)))
    assert accumulator.result() == ExtractedUsage(
        Usage(input_tokens=100, output_tokens=7),
        model="gpt-4o-mini",
        provider="openai",
        operation="chat",
        response_id="chatcmpl-9",
    )


def test_sdk_events() -> None:
    from anthropic.types import (
        RawContentBlockDeltaEvent,
        RawMessageDeltaEvent,
        RawMessageStartEvent,
    )
    from openai.types.chat import ChatCompletionChunk

    start, _, delta, *_ = anthropic_events({"output_tokens": 42})
    message_delta = anthropic_events({"output_tokens": 42})[-2]
    accumulator = feed(
        RawMessageStartEvent.model_validate(start),
        RawContentBlockDeltaEvent.model_validate(delta),
        RawMessageDeltaEvent.model_validate(message_delta),
    )
    assert accumulator.text == "Hi"
    found = accumulator.result()
    assert found is not None
    assert found.usage == Usage(input_tokens=510, output_tokens=42, cache_read_input_tokens=500)

    usage = {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    found = feed(ChatCompletionChunk.model_validate(chat_chunk(usage=usage))).result()
    assert found is not None
    assert found.usage == Usage(input_tokens=2, output_tokens=1)
