"""What the replay server answers, before any provider shapes it: the numbers of one answer,
the script that overrides them, and the record of each exchange."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from llm_toll.usage._base import Usage


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""``Script.usage`` value meaning "the usage the server computed"."""

CREATED = 1_767_225_600  # a fixed timestamp keeps payloads deterministic
TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """The server's tokenizer: one token per word or punctuation mark."""
    return len(TOKEN_PATTERN.findall(text))


@dataclass(frozen=True)
class Script:
    """An override for one request; every field left at its default changes nothing."""

    usage: Any = DEFAULT
    """``DEFAULT``: computed usage. ``None``: usage left out (JSON and streams). A dict: merged
    over the computed provider-format usage (``{"prompt_tokens": -5}``). Anything else: sent
    verbatim in place of the usage object (``"12"``)."""
    model: str | None = None
    """Report this model instead of the requested one."""
    text: str | None = None
    """Reply with this text."""
    cached_tokens: int = 0
    """Prompt tokens read from cache (a cached prefix added to the prompt count)."""
    cache_creation_tokens: int = 0
    """Prompt tokens written to cache (Anthropic ``cache_creation_input_tokens``, OpenAI
    ``cache_write_tokens``), likewise added to the prompt count."""
    reasoning_tokens: int = 0
    """Reasoning/thinking tokens, added to the output."""
    status: int | None = None
    """Answer with this HTTP error status and the provider's error body."""
    break_after: int | None = None
    """Streams: cut the connection after this many events. JSON: after half the body."""
    delay: float = 0.0
    """Seconds to wait before each stream event (or before a JSON answer)."""
    ignore_cap: bool = False
    """Answer in full whatever output cap the request sets (a provider that does not keep
    to it); by default the answer is cut at the cap, as the providers do."""
    body: Any = DEFAULT
    """``DEFAULT``: the provider's body. Anything else is answered instead (a malformed
    body): for JSON, this value as the JSON body, or ``bytes`` sent verbatim (a body that
    is not JSON); for a stream, a list of events, each its data (a JSON value or a raw
    string) or an ``(event name, data)`` pair."""

    def events(self) -> SSE:
        """``body`` as the events of a stream."""
        if not isinstance(self.body, list):
            raise TypeError("a scripted stream body is a list of events")
        return [item if isinstance(item, tuple) else (None, item) for item in self.body]


@dataclass
class Exchange:
    """One request received and what was answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    api: str = "unknown"
    """``openai.chat``, ``openai.completions``, ``openai.embeddings``, ``openai.responses``,
    ``anthropic.messages``, ``gemini.generate_content`` or ``unknown``."""
    stream: bool = False
    status: int = 200
    model: str | None = None
    response_id: str | None = None
    text: str = ""
    tokens: Usage | None = None
    """The counts the server computed, normalised (input includes cached, output includes
    reasoning). What was actually sent is :attr:`usage` (it differs when scripted)."""
    usage: Any = None
    """The provider-format usage object as sent (the final one of a stream); None when left
    out."""
    response: Any = None
    """The JSON body sent, or for a stream the list of its events' data (JSON values, and the
    ``"[DONE]"`` string of OpenAI chat streams)."""


@dataclass
class Answer:
    """What to answer: the numbers first, then each provider's builder shapes them."""

    model: str
    text: str
    response_id: str
    input_tokens: int
    output_tokens: int
    cached: int
    creation: int
    reasoning: int
    script: Script

    @property
    def tokens(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_input_tokens=self.cached,
            cache_creation_input_tokens=self.creation,
            reasoning_output_tokens=self.reasoning,
        )

    def usage(self, computed: dict[str, Any]) -> Any:
        """The usage to send, after the script's override; None means leave it out."""
        override = self.script.usage
        if override is DEFAULT:
            return computed
        if isinstance(override, dict):
            return {**computed, **override}
        return override

    def pieces(self) -> list[str]:
        """The reply text as stream deltas: one word (with its trailing space) each."""
        return re.findall(r"\S+\s*", self.text) or [self.text]


SSE = list[tuple[str | None, Any]]
"""Stream events: (SSE ``event:`` name or None, data as JSON value or raw string)."""


def with_usage(payload: dict[str, Any], key: str, usage: Any) -> dict[str, Any]:
    """``payload`` with ``usage`` under ``key``, unless the usage is left out (None)."""
    if usage is not None:
        payload[key] = usage
    return payload


# Where each provider's request body holds the prompt, and the fields of a message or
# content part that hold text (or more parts): OpenAI chat, Responses and embeddings,
# legacy completions, Anthropic messages and system, Gemini contents and instructions.
_PROMPT_FIELDS = (
    "system",
    "instructions",
    "systemInstruction",
    "system_instruction",
    "messages",
    "input",
    "contents",
    "prompt",
)
_TEXT_FIELDS = ("text", "content", "parts")


def prompt_text(body: dict[str, Any]) -> str:
    """The text of a request's prompt, in order, from its JSON body alone."""
    found: list[str] = []
    pending: list[Any] = [body.get(name) for name in reversed(_PROMPT_FIELDS)]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            pending.extend(reversed(value))
        elif isinstance(value, dict):
            pending.extend(value.get(name) for name in reversed(_TEXT_FIELDS))
    return "\n".join(filter(None, found))


# Where each provider's request body holds its output-token cap.
_CAP_PATHS = (
    ("max_completion_tokens",),
    ("max_tokens",),
    ("max_output_tokens",),
    ("generationConfig", "maxOutputTokens"),
)


def output_cap(body: dict[str, Any]) -> int | None:
    """The request's output-token cap (the lowest, if it sets several); None without one."""
    found: list[int] = []
    for path in _CAP_PATHS:
        value: Any = body
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if type(value) is int and value >= 0:
            found.append(value)
    return min(found) if found else None


def truncate(text: str, tokens: int) -> str:
    """The first ``tokens`` tokens of ``text`` (by the server's tokenizer)."""
    if tokens <= 0:
        return ""
    for index, match in enumerate(TOKEN_PATTERN.finditer(text)):
        if index == tokens - 1:
            return text[: match.end()]
    return text
