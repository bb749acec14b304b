"""OpenAI's documented payloads: Chat Completions, legacy Completions, Embeddings and the
Responses API, as JSON bodies or SSE event sequences."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any

from llm_toll.demo.replay._answer import CREATED, SSE, Answer, with_usage


def _openai_chat_usage(a: Answer) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": a.cached, "audio_tokens": 0}
    if a.creation:
        prompt_details["cache_write_tokens"] = a.creation
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": a.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_chat(a: Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """(payload or SSE events, usage sent) for ``POST /v1/chat/completions``."""
    usage = a.usage(_openai_chat_usage(a))
    head = {"id": a.response_id, "created": CREATED, "model": a.model}
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": a.text,
            "refusal": None,
            "annotations": [],
        }
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        payload = {
            **head,
            "object": "chat.completion",
            "choices": [choice],
            "service_tier": "default",
            "system_fingerprint": "fp_replay",
        }
        return with_usage(payload, "usage", usage), usage
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk = {**head, "object": "chat.completion.chunk", "system_fingerprint": "fp_replay"}

    def event(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return None, {**chunk, "choices": [choice], **({"usage": None} if include_usage else {})}

    events: SSE = [event({"role": "assistant", "content": "", "refusal": None})]
    events += [event({"content": piece}) for piece in a.pieces()]
    events.append(event({}, "stop"))
    if include_usage and usage is not None:
        events.append((None, {**chunk, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return events, usage if include_usage else None


def openai_completion(a: Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/completions`` (legacy): same usage object as chat."""
    usage = a.usage(_openai_chat_usage(a))
    head = {"id": a.response_id, "object": "text_completion", "created": CREATED, "model": a.model}

    def choice(text: str, finish: str | None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    if not stream:
        return with_usage({**head, "choices": [choice(a.text, "stop")]}, "usage", usage), usage
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    pieces = a.pieces()
    events: SSE = [
        (None, {**head, "choices": [choice(p, "stop" if i == len(pieces) - 1 else None)]})
        for i, p in enumerate(pieces)
    ]
    if include_usage and usage is not None:
        events.append((None, {**head, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return events, usage if include_usage else None


def openai_embeddings(a: Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/embeddings``: one 8-dimension vector per input, float or base64."""
    usage = a.usage({"prompt_tokens": a.input_tokens, "total_tokens": a.input_tokens})
    inputs = body.get("input")
    texts = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, text in enumerate(texts):
        digest = hashlib.sha256(json.dumps(text).encode()).digest()
        vector = [(byte - 128) / 128 for byte in digest[:8]]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    payload = {"object": "list", "data": data, "model": a.model}
    return with_usage(payload, "usage", usage), usage


def _responses_usage(a: Answer) -> dict[str, Any]:
    return {
        "input_tokens": a.input_tokens,
        "input_tokens_details": {"cached_tokens": a.cached, "cache_write_tokens": a.creation},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": a.reasoning},
        "total_tokens": a.input_tokens + a.output_tokens,
    }


def openai_response(a: Answer, body: dict[str, Any], stream: bool) -> tuple[Any, Any]:
    """``POST /v1/responses``: a ``response`` object, or its documented event sequence."""
    usage = a.usage(_responses_usage(a))
    item_id = "msg_" + a.response_id.removeprefix("resp_")
    text_part = {"type": "output_text", "text": a.text, "annotations": [], "logprobs": []}
    item = {
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [text_part],
    }

    def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        payload = {
            "id": a.response_id,
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": a.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "metadata": {},
            "usage": usage,
        }
        return payload if usage is not None else {k: v for k, v in payload.items() if k != "usage"}

    if not stream:
        return response("completed", [item], usage), usage
    started = response("in_progress", [], None)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    empty_part = {**text_part, "text": ""}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **where, "part": empty_part},
        *(
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in a.pieces()
        ),
        {"type": "response.output_text.done", **where, "text": a.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": text_part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response("completed", [item], usage)},
    ]
    sse: SSE = [(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events)]
    return sse, usage
