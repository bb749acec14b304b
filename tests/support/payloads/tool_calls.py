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
