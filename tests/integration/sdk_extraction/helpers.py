"""What the SDK extraction tests share: the requests they make, the scripts they run and
``reported``, the usage extraction must give, from the replay server's record of what
it sent (``replay.last``: the normalised counts it computed and the provider-format
usage on the wire)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any

import pytest

from llm_toll.demo.replay import ReplayServer
from llm_toll.usage import ExtractedUsage, StreamAccumulator

MESSAGES: list[Any] = [
    {"role": "system", "content": "You answer geography questions in one short sentence."},
    {"role": "user", "content": "What is the capital of France, and why is it famous?"},
]
CLAUDE = "claude-sonnet-4-6"
GEMINI = "gemini-2.5-flash"
CACHED_AND_REASONING = {"cached_tokens": 40, "reasoning_tokens": 12}
SCRIPTS = [
    pytest.param({}, id="plain"),
    pytest.param(CACHED_AND_REASONING, id="cached+reasoning"),
]
ANTHROPIC_MESSAGES: list[Any] = [{"role": "user", "content": "Name three rivers in Europe."}]


def reported(replay: ReplayServer, provider: str, operation: str) -> ExtractedUsage:
    """What extraction must give for the last exchange, from the server's own record."""
    sent = replay.last
    assert sent.tokens is not None
    return ExtractedUsage(
        usage=sent.tokens,
        model=sent.model,
        provider=provider,
        operation=operation,
        response_id=sent.response_id,
        price_context=served_tier(sent.response) if operation == "chat" else {},
    )


def served_tier(response: Any) -> dict[str, str]:
    """The price context of the service tier the answer (for a stream: its usage chunk)
    says served it."""
    items = response if isinstance(response, list) else [response]
    for item in reversed(items):
        if isinstance(item, dict) and item.get("usage") is not None:
            tier = item.get("service_tier")
            return {"service_tier": tier} if tier else {}
    return {}


def drain(
    stream: Iterable[object], accumulator: StreamAccumulator | None = None
) -> StreamAccumulator:
    accumulator = StreamAccumulator() if accumulator is None else accumulator
    for item in stream:
        accumulator.add(item)
    return accumulator


async def adrain(stream: AsyncIterable[object]) -> StreamAccumulator:
    accumulator = StreamAccumulator()
    async for item in stream:
        accumulator.add(item)
    return accumulator
