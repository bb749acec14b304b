"""Estimating token counts from text, for when a provider reports no usable usage.

The heuristic is deliberately simple and documented rather than clever: **one token per
four characters, rounded up** (OpenAI's rule of thumb for English text), and at least one
token for any non-empty text. It over-counts code and under-counts CJK text; every estimate
is flagged (``ExtractedUsage.estimated``, span attribute ``llm_toll.usage.estimated``) so
nobody mistakes it for a reported count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from llm_toll.usage._base import ExtractedUsage, Usage

CHARS_PER_TOKEN = 4

# Request keywords whose values are prompt text, across the SDKs: ``messages`` (OpenAI chat,
# Anthropic), ``system`` (Anthropic), ``input``/``instructions`` (OpenAI Responses,
# embeddings), ``contents`` (Gemini), ``prompt`` (legacy completions), and the system
# instruction of Gemini (SDK ``config`` / REST ``systemInstruction``).
PROMPT_KEYS = (
    "system",
    "instructions",
    "system_instruction",
    "systemInstruction",
    "messages",
    "input",
    "contents",
    "prompt",
)
# Fields of a message or content part that hold text (or more parts).
_TEXT_FIELDS = ("text", "content", "parts")
_SDK_PACKAGES = frozenset(("openai", "anthropic", "google"))
_MAX_DEPTH = 12


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: 0 for "", so at least 1 for any non-empty text."""
    return -(-len(text) // CHARS_PER_TOKEN)


def request_text(args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
    """The prompt text of a call, flattened: the values of :data:`PROMPT_KEYS` in ``kwargs``,
    the system instruction in a Gemini ``config``, and positional arguments that are text,
    messages or content (for a function called as ``ask("question")``).

    Non-text parts (images, audio, tool definitions) are left out. Parts are joined with
    newlines. Never raises: an argument that cannot be read (a property that raises, a
    mapping that is not one) ends the reading, and the text found so far is the prompt.
    """
    out: list[str] = []
    # An unreadable argument gives an estimate from less text, flagged as an estimate anyway.
    with contextlib.suppress(Exception):
        for arg in args:
            _flatten(arg, out, 0)
        for key in PROMPT_KEYS:
            value = kwargs.get(key)
            if value is not None:
                _flatten(value, out, 0)
        config = kwargs.get("config")
        if config is not None:
            _flatten(_field(config, "system_instruction"), out, 0)
    return "\n".join(out)


def estimate_usage(prompt_text: str, completion_text: str, model: str | None) -> ExtractedUsage:
    """Usage estimated from the prompt and completion text, flagged ``estimated=True``."""
    return ExtractedUsage(
        usage=Usage(
            input_tokens=estimate_tokens(prompt_text),
            output_tokens=estimate_tokens(completion_text),
        ),
        model=model,
        estimated=True,
    )


def _field(value: object, name: str) -> object:
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _flatten(value: object, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH or value is None:
        return
    if isinstance(value, str):
        if value:
            out.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _flatten(item, out, depth + 1)
    elif isinstance(value, (bytes, bytearray, int, float)):
        return
    elif isinstance(value, Mapping):
        for name in _TEXT_FIELDS:
            _flatten(value.get(name), out, depth + 1)
    elif type(value).__module__.partition(".")[0] in _SDK_PACKAGES:
        # SDK objects (google-genai ``Content``/``Part``, Anthropic blocks...); other objects,
        # such as the ``self`` of a decorated method, are not prompt text.
        for name in _TEXT_FIELDS:
            _flatten(getattr(value, name, None), out, depth + 1)
