"""Anthropic: the Messages API, whole and streamed.

Anthropic's ``input_tokens`` *excludes* the tokens read from and written to the prompt
cache; :class:`~llm_toll.usage.base.Usage` counts them in, so they are added here.
``output_tokens`` already includes thinking tokens (``output_tokens_details.thinking_tokens``).

Every function accepts the SDK object or the same JSON as a dict.
"""

from __future__ import annotations

from llm_toll.usage._fields import as_list, checked_usage, count, get, text_of, usage_object
from llm_toll.usage.base import ExtractedUsage, Usage

PROVIDER = "anthropic"


def message_usage(where: str, usage: object, delta: object = None) -> Usage:
    """A Message's ``usage`` as a Usage.

    ``delta`` is the usage of the last ``message_delta`` event of a stream, whose counts are
    cumulative: each count it carries replaces the one from ``message_start``.
    """
    usage = usage_object(where, usage)

    def field(name: str) -> object:
        value = get(delta, name) if delta is not None else None
        return get(usage, name) if value is None else value

    uncached = count(where, "usage.input_tokens", field("input_tokens"), required=True)
    cache_read = count(where, "usage.cache_read_input_tokens", field("cache_read_input_tokens"))
    cache_creation = count(
        where, "usage.cache_creation_input_tokens", field("cache_creation_input_tokens")
    )
    return checked_usage(
        where,
        input_tokens=uncached + cache_read + cache_creation,
        output_tokens=count(where, "usage.output_tokens", field("output_tokens"), required=True),
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        reasoning_output_tokens=count(
            where,
            "usage.output_tokens_details.thinking_tokens",
            get(field("output_tokens_details"), "thinking_tokens"),
        ),
    )


def from_message(message: object) -> ExtractedUsage:
    """A ``Message`` (``type: "message"``), also ``BetaMessage`` and ``ParsedMessage``."""
    return ExtractedUsage(
        usage=message_usage("anthropic message", get(message, "usage")),
        model=text_of(get(message, "model")),
        provider=PROVIDER,
        operation="chat",
        response_id=text_of(get(message, "id")),
    )


def message_text(message: object) -> str:
    """The text blocks of a Message (thinking and tool blocks left out)."""
    return "".join(
        text
        for block in as_list(get(message, "content"))
        if get(block, "type") == "text" and (text := text_of(get(block, "text")))
    )
