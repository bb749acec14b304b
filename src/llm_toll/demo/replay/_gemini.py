"""Gemini's documented payloads: ``generateContent`` and its SSE stream."""

from __future__ import annotations

from typing import Any

from llm_toll.demo.replay._answer import SSE, Answer, with_usage


def _gemini_usage(a: Answer) -> dict[str, Any]:
    # promptTokenCount includes the cached content; thoughts are counted apart from the
    # candidates, and totalTokenCount is the sum of all.
    candidates = a.output_tokens - a.reasoning
    usage: dict[str, Any] = {
        "promptTokenCount": a.input_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": a.input_tokens + a.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": a.input_tokens}],
    }
    if a.cached:
        usage["cachedContentTokenCount"] = a.cached
    if a.reasoning:
        usage["thoughtsTokenCount"] = a.reasoning
    return usage


def gemini_generate(a: Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``:generateContent`` / ``:streamGenerateContent?alt=sse``."""
    usage = a.usage(_gemini_usage(a))

    def chunk(text: str, finish: bool, usage: Any) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = "STOP"
        payload = {"candidates": [candidate], "modelVersion": a.model, "responseId": a.response_id}
        return with_usage(payload, "usageMetadata", usage)

    if not stream:
        return chunk(a.text, True, usage), usage
    # Like the API, early chunks already report the prompt; the last one reports it all.
    running = (
        None
        if usage is None
        else {"promptTokenCount": a.input_tokens, "totalTokenCount": a.input_tokens}
    )
    pieces = a.pieces()
    last = len(pieces) - 1
    events: SSE = [
        (None, chunk(p, i == last, usage if i == last else running)) for i, p in enumerate(pieces)
    ]
    return events, usage
