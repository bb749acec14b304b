"""Anthropic's documented payloads: a ``message``, or its SSE event sequence."""

from __future__ import annotations

from typing import Any

from llm_toll.demo.replay._answer import SSE, Answer, with_usage


def _anthropic_usage(a: Answer, output_tokens: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        # Anthropic's input_tokens leave out the tokens read from and written to the cache.
        "input_tokens": a.input_tokens - a.cached - a.creation,
        "cache_creation_input_tokens": a.creation,
        "cache_read_input_tokens": a.cached,
        "cache_creation": {"ephemeral_5m_input_tokens": a.creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if a.reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": a.reasoning}
    return usage


def _delta_usage(a: Answer) -> dict[str, Any]:
    """``message_delta``'s usage: cumulative counts, without the cache TTL split or the
    service tier that only ``message_start`` carries."""
    whole = _anthropic_usage(a, a.output_tokens)
    for name in ("cache_creation", "service_tier"):
        del whole[name]
    return whole


def anthropic_message(a: Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/messages``: a ``message``, or the documented SSE event sequence."""
    message = {
        "id": a.response_id,
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": [{"type": "text", "text": a.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if not stream:
        usage = a.usage(_anthropic_usage(a, a.output_tokens))
        return with_usage(message, "usage", usage), usage
    # message_start carries the input side (and a first output count); message_delta the
    # cumulative counts, input and cache ones included, as the API sends them now (its
    # MessageDeltaUsage; langchain-anthropic reads a stream's usage from it alone). A
    # scripted override applies to both.
    start_usage = a.usage(_anthropic_usage(a, 1))
    delta_usage = a.usage(_delta_usage(a))
    started = {**message, "content": [], "stop_reason": None}
    events: SSE = [
        (
            "message_start",
            {"type": "message_start", "message": with_usage(started, "usage", start_usage)},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        *(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in a.pieces()
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            with_usage(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                },
                "usage",
                delta_usage,
            ),
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events, delta_usage
