"""Provider answers in their documented JSON shapes, carrying every priced unit llm_toll
reads: service tiers, audio / image / video tokens, 1-hour cache writes, hosted-tool calls,
tool-use prompt tokens, thoughts. Each is a whole answer; :func:`events` turns it into the
stream the same provider sends for it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

CREATED = 1_764_500_000


class Billed(NamedTuple):
    """One answer of the table and what decides its price."""

    api: str
    """``chat``, ``responses``, ``messages`` or ``generate_content``."""
    body: dict[str, Any]
    context: dict[str, str]
    """The price context the answer says it was served in (genai-prices' keys)."""
    billed: Mapping[str, int] = MappingProxyType({})
    """Units the provider bills that genai-prices' extractor does not read (the Responses
    API's hosted-tool calls): added to its usage for the reference price."""
    matters: bool = True
    """Whether the units and context change the price (a case where they do not shows
    they are read without harm)."""


# -- OpenAI chat completions -----------------------------------------------------------------


def chat(
    model: str,
    prompt: int,
    completion: int,
    *,
    tier: str = "default",
    cached: int = 0,
    reasoning: int = 0,
    input_audio: int = 0,
    output_audio: int = 0,
    input_image: int = 0,
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{model}-{tier}-{prompt}",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {
                "cached_tokens": cached,
                "audio_tokens": input_audio,
                "image_tokens": input_image,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": output_audio,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": tier,
        "system_fingerprint": "fp_0a1b2c",
    }


# -- OpenAI Responses ------------------------------------------------------------------------

MESSAGE_ITEM = {
    "id": "msg_01",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Paris.", "annotations": []}],
}


def web_search_call(n: int, action: str = "search") -> dict[str, Any]:
    actions: dict[str, dict[str, Any]] = {
        "search": {"type": "search", "query": f"weather paris {n}"},
        "open_page": {"type": "open_page", "url": "https://example.org/"},
        "find": {"type": "find", "url": "https://example.org/", "pattern": "rain"},
    }
    return {"id": f"ws_{n}", "type": "web_search_call", "status": "completed",
            "action": actions[action]}  # fmt: skip


def file_search_call(n: int) -> dict[str, Any]:
    return {"id": f"fs_{n}", "type": "file_search_call", "status": "completed",
            "queries": ["deadline"], "results": None}  # fmt: skip


def code_interpreter_call(n: int) -> dict[str, Any]:
    return {"id": f"ci_{n}", "type": "code_interpreter_call", "status": "completed",
            "code": "print(1 + 1)", "container_id": "cntr_1", "outputs": None}  # fmt: skip


def response(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    tier: str = "default",
    cached: int = 0,
    reasoning: int = 0,
    tools: list[dict[str, Any]] | None = None,
    tool_usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"resp_{model}_{tier}_{input_tokens}",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "model": model,
        "output": [*(tools or []), MESSAGE_ITEM],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "service_tier": tier,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        },
    }
    if tool_usage is not None:
        body["tool_usage"] = tool_usage
    return body


# -- Anthropic Messages ----------------------------------------------------------------------


def message(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    web_searches: int = 0,
    web_fetches: int = 0,
    tier: str = "standard",
    speed: str | None = None,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": write_5m,
            "ephemeral_1h_input_tokens": write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": tier,
    }
    if web_searches or web_fetches:
        usage["server_tool_use"] = {
            "web_search_requests": web_searches,
            "web_fetch_requests": web_fetches,
        }
    if speed is not None:
        usage["speed"] = speed
    return {
        "id": f"msg_{model}_{input_tokens}_{write_1h}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "The Danube, the Rhine and the Loire."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


# -- Gemini generate_content -----------------------------------------------------------------


def modalities(**counts: int) -> list[dict[str, Any]]:
    return [{"modality": name.upper(), "tokenCount": n} for name, n in counts.items()]


def generate(
    model: str,
    prompt: dict[str, int],
    candidates: dict[str, int],
    *,
    cache: dict[str, int] | None = None,
    tool_prompt: dict[str, int] | None = None,
    thoughts: int = 0,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "promptTokenCount": sum(prompt.values()),
        "candidatesTokenCount": sum(candidates.values()),
        "promptTokensDetails": modalities(**prompt),
        "candidatesTokensDetails": modalities(**candidates),
    }
    total = sum(prompt.values()) + sum(candidates.values()) + thoughts
    if cache:
        metadata["cachedContentTokenCount"] = sum(cache.values())
        metadata["cacheTokensDetails"] = modalities(**cache)
    if tool_prompt:
        metadata["toolUsePromptTokenCount"] = sum(tool_prompt.values())
        metadata["toolUsePromptTokensDetails"] = modalities(**tool_prompt)
        total += sum(tool_prompt.values())
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    metadata["totalTokenCount"] = total
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": "A cat purring."}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": metadata,
        "modelVersion": model,
        "responseId": f"gen-{model}-{total}",
    }


# -- The table ---------------------------------------------------------------------------------

TIER = {"service_tier": "default"}
CASES: dict[str, Billed] = {
    # OpenAI chat: the tier served, audio and image tokens.
    "chat-o3-flex": Billed(
        "chat", chat("o3", 1200, 800, tier="flex", reasoning=500), {"service_tier": "flex"}
    ),
    "chat-o3-priority": Billed(
        "chat", chat("o3", 1500, 300, tier="priority", cached=1024), {"service_tier": "priority"}
    ),
    "chat-gpt-4o-priority": Billed(
        "chat", chat("gpt-4o", 2000, 400, tier="priority"), {"service_tier": "priority"}
    ),
    "chat-gpt-5-flex-cached": Billed(
        "chat",
        chat("gpt-5", 5000, 1000, tier="flex", cached=4096, reasoning=600),
        {"service_tier": "flex"},
    ),
    "chat-gpt-4o-default": Billed("chat", chat("gpt-4o", 900, 120), TIER, matters=False),
    "chat-gpt-audio-in-out": Billed(
        "chat", chat("gpt-audio", 1400, 900, input_audio=1200, output_audio=700), TIER
    ),
    "chat-gpt-audio-mini-in": Billed(
        "chat", chat("gpt-audio-mini", 3000, 50, input_audio=2900), TIER
    ),
    "chat-gpt-4o-image": Billed(
        "chat", chat("gpt-4o", 1800, 90, input_image=1530), TIER, matters=False
    ),
    # OpenAI Responses: the tier, hosted tools billed per call.
    "responses-o3-flex": Billed(
        "responses",
        response("o3", 3000, 1200, tier="flex", reasoning=900),
        {"service_tier": "flex"},
    ),
    "responses-gpt-5-priority": Billed(
        "responses",
        response("gpt-5", 4000, 500, tier="priority", cached=2048),
        {"service_tier": "priority"},
    ),
    "responses-o3-web-search": Billed(
        "responses",
        response(
            "o3",
            8000,
            700,
            reasoning=300,
            tools=[web_search_call(1), web_search_call(2), web_search_call(3, "open_page")],
        ),
        TIER,
        billed={"web_searches": 2},
    ),
    "responses-gpt-4o-tool-usage": Billed(
        "responses",
        response(
            "gpt-4o",
            6000,
            400,
            # A discounted search: not billable, though an item says it searched.
            tools=[web_search_call(1), web_search_call(2), web_search_call(3, "find")],
            tool_usage={"web_search": {"num_requests": 1}},
        ),
        TIER,
        billed={"web_searches": 1},
    ),
    "responses-gpt-4.1-file-search": Billed(
        "responses",
        response("gpt-4.1", 2500, 200, tools=[file_search_call(1), file_search_call(2)]),
        TIER,
        billed={"storage_searches": 2},
    ),
    "responses-gpt-5-flex-search": Billed(
        "responses",
        response("gpt-5", 9000, 900, tier="flex", reasoning=400, tools=[web_search_call(1)]),
        {"service_tier": "flex"},
        billed={"web_searches": 1},
    ),
    "responses-o4-mini-code": Billed(
        "responses",
        response("o4-mini", 1500, 300, tools=[code_interpreter_call(1)]),
        TIER,
        matters=False,
    ),
    # Anthropic Messages: 1-hour cache writes, web searches, batch and fast mode.
    "messages-sonnet-4-5-1h": Billed(
        "messages", message("claude-sonnet-4-5", 50, 300, write_1h=4000), {}
    ),
    "messages-opus-4-1-5m-and-1h": Billed(
        "messages",
        message("claude-opus-4-1", 20, 150, write_5m=1000, write_1h=3000, cache_read=500),
        {},
    ),
    "messages-haiku-4-5-5m-only": Billed(
        "messages", message("claude-haiku-4-5", 30, 100, write_5m=2500), {}, matters=False
    ),
    "messages-sonnet-4-6-web-search": Billed(
        "messages", message("claude-sonnet-4-6", 6000, 800, web_searches=3), {}
    ),
    "messages-sonnet-4-6-web-fetch": Billed(
        "messages", message("claude-sonnet-4-6", 9000, 500, web_fetches=2), {}, matters=False
    ),
    "messages-opus-4-5-batch": Billed(
        "messages", message("claude-opus-4-5", 3000, 900, tier="batch"), {"processing": "batch"}
    ),
    "messages-opus-4-8-fast": Billed(
        "messages", message("claude-opus-4-8", 2000, 600, speed="fast"), {"speed": "fast"}
    ),
    "messages-haiku-4-5-priority": Billed(
        "messages", message("claude-haiku-4-5", 700, 90, tier="priority"), {}, matters=False
    ),
    # Gemini: modalities, cached audio, tool-use prompt, thoughts.
    "gemini-2.5-flash-audio": Billed(
        "generate_content",
        generate("gemini-2.5-flash", {"text": 12, "audio": 3200}, {"text": 40}),
        {},
    ),
    "gemini-2.5-flash-cached-audio": Billed(
        "generate_content",
        generate(
            "gemini-2.5-flash", {"text": 100, "audio": 6000}, {"text": 80}, cache={"audio": 4096}
        ),
        {},
    ),
    "gemini-2.0-flash-audio-thoughts": Billed(
        "generate_content",
        generate("gemini-2.0-flash", {"text": 50, "audio": 900}, {"text": 60}, thoughts=300),
        {},
    ),
    "gemini-2.5-flash-image-out": Billed(
        "generate_content", generate("gemini-2.5-flash-image", {"text": 20}, {"image": 1290}), {}
    ),
    "gemini-live-2.5-flash-video": Billed(
        "generate_content",
        generate(
            "gemini-live-2.5-flash", {"text": 30, "video": 2580, "audio": 800}, {"audio": 400}
        ),
        {},
    ),
    "gemini-live-2.5-flash-image-doc": Billed(
        "generate_content",
        generate(
            "gemini-live-2.5-flash", {"text": 30, "image": 258, "document": 516}, {"text": 25}
        ),
        {},
    ),
    "gemini-2.5-pro-tool-use": Billed(
        "generate_content",
        generate(
            "gemini-2.5-pro", {"text": 400}, {"text": 120}, tool_prompt={"text": 900}, thoughts=700
        ),
        {},
        matters=False,
    ),
    "gemini-2.5-flash-tool-audio": Billed(
        "generate_content",
        generate(
            "gemini-2.5-flash", {"text": 100}, {"text": 50}, tool_prompt={"text": 20, "audio": 1500}
        ),
        {},
    ),
    "gemini-omni-flash-video-out": Billed(
        "generate_content", generate("gemini-omni-flash-preview", {"text": 40}, {"video": 5000}), {}
    ),
}


# -- Streams -----------------------------------------------------------------------------------


def events(api: str, body: dict[str, Any]) -> list[Any]:
    """The stream the provider sends for the whole answer ``body`` (``Script.body`` form)."""
    streams = {
        "chat": _chat_events,
        "responses": _responses_events,
        "messages": _messages_events,
        "generate_content": _gemini_events,
    }
    return streams[api](body)


def _chat_events(body: dict[str, Any]) -> list[Any]:
    head = {key: body[key] for key in ("id", "created", "model", "service_tier",
                                       "system_fingerprint")}  # fmt: skip
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], "usage": None}

    text = body["choices"][0]["message"]["content"]
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": text}),
        chunk({}, "stop"),
        {**head, "choices": [], "usage": body["usage"]},
        "[DONE]",
    ]


def _responses_events(body: dict[str, Any]) -> list[Any]:
    started = {**body, "status": "in_progress", "output": [], "usage": None}
    started.pop("tool_usage", None)
    return [
        ("response.created", {"type": "response.created", "sequence_number": 0,
                              "response": started}),
        ("response.output_text.delta", {"type": "response.output_text.delta",
                                        "sequence_number": 1, "item_id": "msg_01",
                                        "output_index": len(body["output"]) - 1,
                                        "content_index": 0, "delta": "Paris.", "logprobs": []}),
        ("response.completed", {"type": "response.completed", "sequence_number": 2,
                                "response": body}),
    ]  # fmt: skip


def _messages_events(body: dict[str, Any]) -> list[Any]:
    usage = body["usage"]
    start_usage = {key: value for key, value in usage.items() if key != "server_tool_use"}
    start_usage["output_tokens"] = 1
    start = {**copy.deepcopy(body), "content": [], "stop_reason": None, "usage": start_usage}
    delta_usage = {
        key: usage[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                    "output_tokens", "server_tool_use")
        if key in usage
    }  # fmt: skip
    text = body["content"][0]["text"]
    return [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": delta_usage}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip


def _gemini_events(body: dict[str, Any]) -> list[Any]:
    metadata = body["usageMetadata"]
    early = {key: metadata[key] for key in ("promptTokenCount", "promptTokensDetails")}
    first = {
        "candidates": [{"content": {"parts": [{"text": "A cat "}], "role": "model"}, "index": 0}],
        "usageMetadata": {**early, "totalTokenCount": metadata["promptTokenCount"]},
        "modelVersion": body["modelVersion"],
        "responseId": body["responseId"],
    }
    last = copy.deepcopy(body)
    last["candidates"][0]["content"]["parts"] = [{"text": "purring."}]
    return [first, last]
