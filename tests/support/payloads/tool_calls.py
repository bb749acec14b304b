"""A model's request for a tool call, in the documented shapes of OpenAI's Chat Completions
and Responses APIs: the first answer of a multi-step agent (the replay server answers its
next request, with the tool's result, in text)."""

from __future__ import annotations

import json
from typing import Any

from llm_toll.demo.replay._answer import CREATED


def chat_tool_call(
    model: str, name: str, arguments: dict[str, Any], *, prompt: int, completion: int
) -> dict[str, Any]:
    """``POST /v1/chat/completions``: one function call, ``finish_reason="tool_calls"``."""
    call = {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
    return {
        "id": f"chatcmpl-tool-{name}",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def responses_function_call(
    model: str, name: str, arguments: dict[str, Any], *, prompt: int, completion: int
) -> dict[str, Any]:
    """``POST /v1/responses``: a completed response whose one output is a function call."""
    item = {
        "type": "function_call",
        "id": f"fc_{name}",
        "call_id": f"call_{name}",
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }
    return {
        "id": f"resp_tool_{name}",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [item],
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
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }


def chat_tool_call_stream(
    model: str, name: str, arguments: dict[str, Any], *, prompt: int, completion: int
) -> list[Any]:
    """The same call as :func:`chat_tool_call`, streamed: the call's name, then its
    arguments, then ``finish_reason``; the usage chunk (``include_usage``) and ``[DONE]``."""
    whole = chat_tool_call(model, name, arguments, prompt=prompt, completion=completion)
    head = {
        "id": whole["id"],
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_replay",
    }
    call = whole["choices"][0]["message"]["tool_calls"][0]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], "usage": None}

    named = {**call, "index": 0, "function": {"name": name, "arguments": ""}}
    argued = {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [named]}),
        chunk({"tool_calls": [argued]}),
        chunk({}, "tool_calls"),
        {**head, "choices": [], "usage": whole["usage"]},
        "[DONE]",
    ]


def responses_function_call_stream(
    model: str, name: str, arguments: dict[str, Any], *, prompt: int, completion: int
) -> list[Any]:
    """The same call as :func:`responses_function_call`, as the Responses API streams it:
    ``(event name, data)`` pairs from ``response.created`` to ``response.completed``."""
    whole = responses_function_call(model, name, arguments, prompt=prompt, completion=completion)
    item = whole["output"][0]
    started = {**whole, "status": "in_progress", "output": [], "usage": None}
    where = {"item_id": item["id"], "output_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "arguments": "", "status": "in_progress"},
        },
        {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]},
        {
            "type": "response.function_call_arguments.done",
            **where,
            "name": name,
            "arguments": item["arguments"],
        },
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": whole},
    ]
    return [(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events)]
