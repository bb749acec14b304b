"""What a provider request can cost at most, read from the request itself.

Its input is bounded by the UTF-8 bytes of its JSON body: the body holds all of the prompt
(system text, messages, tool definitions and their schemas), and every token of the
tokenizers the providers use (byte-level BPE and SentencePiece with byte fallback) stands for
at least one byte of text, so a body of N bytes carries at most N tokens of text. The
providers' prompt templates add a few tokens the body does not hold (role markers, message
separators): a margin per request and per message covers them. The bound is loose (about
four times the count of English text) but it is a bound, which a tokenizer's count is not:
each provider counts with its own, and several do not publish theirs.

Its output is bounded by its own cap (``max_tokens`` & co., which the providers apply to
reasoning and thinking tokens too) times the answers it asks for. Content the body only
points at (an image or a file by URL or id) is counted by the provider from what it points
at: such a request has no bound.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from llm_toll._call.plan import Plan
from llm_toll.usage._fields import get

# The prompt template of a chat API adds a few tokens per request and per message that the
# body's bytes do not hold: this many for the request, and this many for each message.
REQUEST_OVERHEAD_TOKENS = 64
MESSAGE_OVERHEAD_TOKENS = 8
# Request arguments that cap a call's output tokens (OpenAI, Anthropic, Gemini), and the
# nested Gemini configurations that may hold them.
OUTPUT_LIMIT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens")
CONFIG_KEYS = ("config", "generation_config", "generationConfig")


def max_output_tokens(kwargs: dict[str, Any]) -> int | None:
    """The largest output-token cap among the call's keyword arguments and its nested Gemini
    ``config`` / ``generation_config`` (dicts or objects); None when there is none."""
    sources: list[object] = [kwargs]
    sources.extend(kwargs[name] for name in CONFIG_KEYS if kwargs.get(name) is not None)
    found: list[int] = []
    for source in sources:
        for name in OUTPUT_LIMIT_KEYS:
            value = get(source, name)
            if type(value) is int and value >= 0:
                found.append(value)
    return max(found) if found else None


class RequestBound(NamedTuple):
    """A provider request's worst case, as read from its body."""

    model: str
    input_tokens: int
    """A bound provably at least the provider's count of the request's input tokens."""
    cap: int | None
    """The request's own output-token cap; None when it has none."""
    generates: bool
    """False for requests that produce no output tokens (embeddings)."""
    choices: int = 1
    """How many answers it asks for (``n``, ``best_of``, ``candidateCount``), each up to
    the cap."""


def request_bound(plan: Plan, body: dict[str, Any], *, generates: bool) -> RequestBound | str:
    """The worst case of a request's ``body``, or why it cannot be bounded."""
    model = plan.requested_model(body)
    if model is None:
        return "it names no model"
    by_reference = _media_by_reference(body, 0)
    if by_reference:
        return f"it carries {by_reference} by reference, whose tokens its body does not bound"
    text = json.dumps(body, ensure_ascii=False, default=str, separators=(",", ":"))
    messages = body.get("messages") or body.get("contents") or body.get("input")
    count = len(messages) if isinstance(messages, list) else 1
    bound = len(text.encode()) + REQUEST_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS * count
    return RequestBound(model, bound, max_output_tokens(body), generates, _choices(body))


def _choices(body: dict[str, Any]) -> int:
    """How many answers a request asks for: OpenAI's ``n`` and ``best_of``, Gemini's
    ``candidateCount``."""
    config = body.get("generationConfig")
    counts = [body.get("n"), body.get("best_of")]
    if isinstance(config, dict):
        counts.append(config.get("candidateCount"))
    return max([count for count in counts if type(count) is int and count > 1] or [1])


# Parts of a request that point at content stored elsewhere (a URL, an uploaded file): the
# provider counts the tokens of what they point at, which the body does not show.
_REFERENCE_KEYS = ("file_id", "fileUri", "file_uri", "fileData", "file_data")


def _media_by_reference(value: object, depth: int) -> str:
    if depth > 20:
        return ""
    if isinstance(value, list):
        for item in value:
            found = _media_by_reference(item, depth + 1)
            if found:
                return found
        return ""
    if not isinstance(value, dict):
        return ""
    for key in _REFERENCE_KEYS:
        if value.get(key):
            return f"a file ({key})"
    image = value.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if url is None and value.get("type") in ("url", "image_url", "input_image", "input_file"):
        url = value.get("url")
    if isinstance(url, str) and not url.startswith("data:"):
        return "an image or a document"
    source = value.get("source")
    if isinstance(source, dict) and source.get("type") in ("url", "file"):
        return "an image or a document"
    for item in value.values():
        found = _media_by_reference(item, depth + 1)
        if found:
            return found
    return ""
