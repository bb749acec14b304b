"""Accumulating usage (and text) over the items of a streamed response.

A :class:`StreamAccumulator` is fed every item a stream yields, sync or async, and never
raises. What it understands (SDK objects and their JSON dicts alike):

- OpenAI chat ``ChatCompletionChunk`` and streamed legacy ``Completion`` chunks: text deltas,
  and the usage of the final chunk (sent only with ``stream_options={"include_usage": True}``);
  look-alikes without ``object`` (a ``choices`` list and a ``model``) are read as chat chunks;
- the ``chunk`` events of OpenAI's ``chat.completions.stream()`` helper (other helper
  events repeat what the chunks say and are ignored);
- OpenAI Responses stream events (also from the ``responses.stream()`` helper):
  ``response.output_text.delta`` text, and the full response of ``response.completed`` /
  ``response.incomplete`` / ``response.failed``;
- Anthropic raw stream events: ``message_start`` (model, id, input and cache usage),
  ``content_block_delta`` text, ``message_delta`` (cumulative usage, output tokens). The
  higher-level ``MessageStream`` yields these same raw events, plus derived ``text`` events
  that are ignored so nothing is counted twice; ``message_stop`` ends the stream;
- Gemini ``GenerateContentResponse`` chunks: text, and the latest ``usage_metadata``;
- plain ``str`` items (a generator yielding text): text only.

Items are only looked at in :meth:`StreamAccumulator.add`; the usage is validated once, in
:meth:`StreamAccumulator.result`, so malformed usage never interrupts a stream.

A stream cut before its final usage may still have reported part of it (Anthropic's
``message_start`` has the exact input tokens but an output count of 1; Gemini's early chunks
have the prompt count). Such partial usage is completed with an output estimated from the
text seen, and flagged ``estimated``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from llm_toll.usage import _anthropic as anthropic
from llm_toll.usage import _gemini as gemini
from llm_toll.usage import _openai as openai
from llm_toll.usage._base import NO_CONTEXT, ExtractedUsage, Usage
from llm_toll.usage._estimate import estimate_tokens
from llm_toll.usage._fields import get, get2, text_of
from llm_toll.usage._provider_cost import usage_cost

# (usage of the final usage-bearing item, usage of an Anthropic message_delta, the item that
# carried the usage) -> (Usage, price context)
_Reader = Callable[[object, object, object], tuple[Usage, Mapping[str, str]]]


def _read_chat(usage: object, _: object, chunk: object) -> tuple[Usage, Mapping[str, str]]:
    # The tier that served the stream, as its final chunk says.
    usage_read = openai.chat_usage("openai chat.completion stream", usage)
    return usage_read, openai.price_context(chunk)


def _read_completion(usage: object, _: object, __: object) -> tuple[Usage, Mapping[str, str]]:
    return openai.chat_usage("openai text_completion stream", usage), NO_CONTEXT


def _read_response(usage: object, _: object, response: object) -> tuple[Usage, Mapping[str, str]]:
    where = "openai response stream"
    found = openai.responses_usage(where, usage, openai.tool_units(where, response))
    return found, openai.price_context(response)


def _read_message(start: object, delta: object, _: object) -> tuple[Usage, Mapping[str, str]]:
    # A stream cut before message_start still counts if message_delta carried everything.
    usage = delta if start is None else start
    found = anthropic.message_usage("anthropic message stream", usage, delta)
    return found, anthropic.price_context(usage)


def _read_gemini(metadata: object, _: object, __: object) -> tuple[Usage, Mapping[str, str]]:
    return gemini.usage_metadata(metadata, "gcp.gemini generate_content stream"), NO_CONTEXT


class StreamAccumulator:
    """Collects what a stream reports, item by item; see the module docstring.

    :meth:`result` returns None when no usage was seen (the stream never reported any, or
    was cut before it did) and **raises** :class:`~llm_toll.usage._base.UsageError` when the
    usage seen is malformed; either way the caller can fall back to estimating from
    :attr:`text`. Partial usage (a stream cut after reporting its input side only) comes
    back with an estimated output and ``estimated=True``.
    """

    __slots__ = (
        "_complete",
        "_delta",
        "_override",
        "_parts",
        "_read",
        "_source",
        "_usage",
        "chunks",
        "finished",
        "model",
        "operation",
        "provider",
        "response_id",
    )

    def __init__(self) -> None:
        self.chunks = 0
        """How many items were added."""
        self._parts: list[str] = []
        self._override: ExtractedUsage | None = None
        self._usage: object = None
        self._source: object = None
        self._delta: object = None
        self._read: _Reader | None = None
        self._complete = False
        self.finished = False
        """The stream's last word is in: its final usage chunk, ``response.completed`` (or
        ``incomplete`` / ``failed``) or ``message_stop``. Nothing after it changes what the
        stream costs, so the call can be recorded now, not when a reader that stops there
        (LiteLLM's stream wrapper does) lets the stream be collected."""
        self.model: str | None = None
        """The model the provider says answers, as first seen in the stream."""
        self.response_id: str | None = None
        self.provider: str | None = None
        self.operation: str | None = None

    @property
    def text(self) -> str:
        """The generated text seen so far (visible text; no thinking, no tool input)."""
        return "".join(self._parts)

    @property
    def text_pieces(self) -> int:
        """How many items carried generated text: each carries at least one token, so this
        is a lower bound of the output tokens so far."""
        return len(self._parts)

    def add(self, item: object) -> None:
        """Look at one stream item. Never raises."""
        self.chunks += 1
        try:
            cls = type(item)
            handler = _handlers.get(cls)
            if handler is None:
                handler = _handlers[cls] = _classify(cls)
            handler(self, item)
        except Exception:
            pass  # an odd item must never break the caller's stream

    def override(self, found: ExtractedUsage) -> None:
        """Usage known by other means (a user's ``extract_usage`` callback on an item): it wins
        over what the stream reports; what it leaves unset is filled from the stream."""
        self._override = found

    def result(self) -> ExtractedUsage | None:
        """The usage the stream reported, None if it reported none.

        Raises UsageError (naming provider and field) if the reported usage is malformed.
        """
        if self._override is not None:
            return replace(
                self._override,
                model=self._override.model or self.model,
                provider=self._override.provider or self.provider,
                operation=self._override.operation or self.operation,
                response_id=self._override.response_id or self.response_id,
            )
        if self._read is None:
            return None
        usage, context = self._read(self._usage, self._delta, self._source)
        if not self._complete:  # cut short: at least what its text shows
            estimate = max(estimate_tokens(self.text), self.text_pieces)
            if estimate > usage.output_tokens:
                usage = replace(usage, output_tokens=estimate)
        return ExtractedUsage(
            usage=usage,
            model=self.model,
            provider=self.provider,
            operation=self.operation,
            response_id=self.response_id,
            estimated=not self._complete,
            price_context=context,
            # OpenRouter's usage.cost, in the final chunk's usage as in a whole answer.
            provider_cost_nanos=usage_cost(self._usage) if self.provider == "openai" else None,
        )

    def _start(self, provider: str, operation: str, model: object, response_id: object) -> None:
        if self.provider is None:
            self.provider = provider
            self.operation = operation
        if self.model is None:
            self.model = text_of(model)
        if self.response_id is None:
            self.response_id = text_of(response_id)

    def _found(
        self, usage: object, read: _Reader, complete: bool = True, source: object = None
    ) -> None:
        """Usage seen, carried by ``source``; ``complete`` when it is the stream's final word
        on usage."""
        if usage is not None:
            self._usage = usage
            self._source = source
            self._read = read
            self._complete = complete


_Handler = Callable[[StreamAccumulator, object], None]


def _is_usage_chunk(chunk: object, usage: object) -> bool:
    """OpenAI's final chunk (``include_usage``): usage and no choices. Servers that report
    usage on every chunk (vLLM's ``continuous_usage_stats``) still send choices with it."""
    return usage is not None and get(chunk, "choices") == []


def _chat_chunk(acc: StreamAccumulator, chunk: object) -> None:
    acc._start(openai.PROVIDER, "chat", get(chunk, "model"), get(chunk, "id"))
    if text := openai.chunk_text(chunk):
        acc._parts.append(text)
    usage = get(chunk, "usage")
    acc._found(usage, _read_chat, source=chunk)
    acc.finished = _is_usage_chunk(chunk, usage)


def _completion_chunk(acc: StreamAccumulator, chunk: object) -> None:
    acc._start(openai.PROVIDER, "text_completion", get(chunk, "model"), get(chunk, "id"))
    if text := openai.chunk_text(chunk):
        acc._parts.append(text)
    usage = get(chunk, "usage")
    acc._found(usage, _read_completion)
    acc.finished = _is_usage_chunk(chunk, usage)


def _gemini_chunk(acc: StreamAccumulator, chunk: object) -> None:
    acc._start(
        gemini.PROVIDER, gemini.OPERATION, gemini.model_version(chunk), gemini.response_id(chunk)
    )
    if text := gemini.candidate_text(chunk):
        acc._parts.append(text)
    acc._found(gemini.metadata_of(chunk), _read_gemini, gemini.is_finished(chunk))


def _chat_chunk_event(acc: StreamAccumulator, event: object) -> None:
    """A ``chunk`` event of OpenAI's ``chat.completions.stream()`` helper wraps a raw chunk."""
    _chat_chunk(acc, get(event, "chunk"))


def _response_started(acc: StreamAccumulator, event: object) -> None:
    response = get(event, "response")
    acc._start(openai.PROVIDER, "chat", get(response, "model"), get(response, "id"))


def _response_finished(acc: StreamAccumulator, event: object) -> None:
    _response_started(acc, event)
    response = get(event, "response")
    acc._found(get(response, "usage"), _read_response, source=response)
    acc.finished = True


def _response_text(acc: StreamAccumulator, event: object) -> None:
    if text := text_of(get(event, "delta")):
        acc._parts.append(text)


def _message_start(acc: StreamAccumulator, event: object) -> None:
    message = get(event, "message")
    acc._start(anthropic.PROVIDER, "chat", get(message, "model"), get(message, "id"))
    acc._found(get(message, "usage"), _read_message, complete=False)


def _message_delta(acc: StreamAccumulator, event: object) -> None:
    usage = get(event, "usage")
    if usage is not None:
        acc._delta = usage
        acc._read = _read_message
        acc._complete = True


def _message_stop(acc: StreamAccumulator, _: object) -> None:
    acc.finished = acc._read is not None


def _content_block_delta(acc: StreamAccumulator, event: object) -> None:
    delta = get(event, "delta")
    if get(delta, "type") == "text_delta" and (text := text_of(get(delta, "text"))):
        acc._parts.append(text)


# The ``type`` of an OpenAI Responses or Anthropic stream event -> handler. Other events
# (content_block_start, ping, the helpers' derived "text" / "content.delta" events...) carry
# nothing new.
_EVENTS: dict[object, _Handler] = {
    "chunk": _chat_chunk_event,
    "response.created": _response_started,
    "response.in_progress": _response_started,
    "response.output_text.delta": _response_text,
    "response.completed": _response_finished,
    "response.incomplete": _response_finished,
    "response.failed": _response_finished,
    "message_start": _message_start,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
    "content_block_delta": _content_block_delta,
}


def _typed_event(acc: StreamAccumulator, event: object) -> None:
    handler = _EVENTS.get(get(event, "type"))
    if handler is not None:
        handler(acc, event)


def _text(acc: StreamAccumulator, text: object) -> None:
    if isinstance(text, str) and text:
        acc._parts.append(text)


def _ignore(acc: StreamAccumulator, item: object) -> None:
    return None


def _by_shape(acc: StreamAccumulator, item: object) -> None:
    """Dicts, and objects of classes from no known SDK: judged by their fields."""
    obj = get(item, "object")
    if obj == "chat.completion.chunk":
        _chat_chunk(acc, item)
    elif obj == "text_completion":
        _completion_chunk(acc, item)
    elif isinstance(get(item, "type"), str):
        _typed_event(acc, item)
    elif get2(item, "usage_metadata", "usageMetadata") is not None or (
        get(item, "candidates") is not None
    ):
        _gemini_chunk(acc, item)
    elif isinstance(get(item, "choices"), list) and isinstance(get(item, "model"), str):
        _chat_chunk(acc, item)  # a chat chunk without "object", as llm-toll 0.13 read it


# (top-level package, class name) -> handler; other classes of these packages are events.
_SDK_CLASSES: dict[tuple[str, str], _Handler] = {
    ("openai", "ChatCompletionChunk"): _chat_chunk,
    ("openai", "Completion"): _completion_chunk,
    ("google", "GenerateContentResponse"): _gemini_chunk,
}
_EVENT_PACKAGES = frozenset(("openai", "anthropic"))


def _classify(cls: type) -> _Handler:
    if cls is str:
        return _text
    if cls.__module__ == "builtins" and not issubclass(cls, dict):
        return _ignore
    if issubclass(cls, dict):
        return _by_shape
    for klass in cls.__mro__:
        handler = _SDK_CLASSES.get((klass.__module__.partition(".")[0], klass.__name__))
        if handler is not None:
            return handler
    package = cls.__module__.partition(".")[0]
    if package in _EVENT_PACKAGES:
        return _typed_event
    if package == "google":
        return _ignore
    return _by_shape


_handlers: dict[type, _Handler] = {}
