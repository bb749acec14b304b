"""Recognise an LLM response, from any supported SDK or as a JSON dict, and read its usage.

Detection runs on every tracked call, so it is a dictionary lookup on the response's class:
each class is classified once (by module and class name, walking its MRO so that subclasses
such as ``ParsedChatCompletion`` are recognised) and the verdict is cached. No SDK is
imported. Dicts, and objects of classes from no known SDK (e.g. an OpenAI-compatible
library's response type, or a test double), are recognised by their shape instead.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_toll.usage import _anthropic as anthropic
from llm_toll.usage import _gemini as gemini
from llm_toll.usage import _openai as openai
from llm_toll.usage._base import ExtractedUsage
from llm_toll.usage._fields import get, get2

Extractor = Callable[[object], ExtractedUsage]
TextReader = Callable[[object], str]


class _Kind:
    """How to read one kind of response: its usage and its generated text."""

    __slots__ = ("extract", "text")

    def __init__(self, extract: Extractor, text: TextReader) -> None:
        self.extract = extract
        self.text = text


def _no_text(response: object) -> str:
    return ""


CHAT = _Kind(openai.from_chat_completion, openai.chat_text)
COMPLETION = _Kind(openai.from_completion, openai.completion_text)
EMBEDDINGS = _Kind(openai.from_embeddings, _no_text)
RESPONSE = _Kind(openai.from_response, openai.response_output_text)
MESSAGE = _Kind(anthropic.from_message, anthropic.message_text)
GENERATE_CONTENT = _Kind(gemini.from_generate_content, gemini.candidate_text)
# The SDKs' own types, their usual usage read by attribute rather than field by field.
CHAT_MODEL = _Kind(openai.from_chat_model, openai.chat_text)
MESSAGE_MODEL = _Kind(anthropic.from_message_model, anthropic.message_text)
GENERATE_CONTENT_MODEL = _Kind(gemini.from_generate_content_model, gemini.candidate_text)

# (top-level package, class name) -> kind. Subclasses are found through the MRO.
_SDK_CLASSES: dict[tuple[str, str], _Kind] = {
    ("openai", "ChatCompletion"): CHAT_MODEL,
    ("openai", "Completion"): COMPLETION,
    ("openai", "CreateEmbeddingResponse"): EMBEDDINGS,
    ("openai", "Response"): RESPONSE,
    ("anthropic", "Message"): MESSAGE_MODEL,
    ("anthropic", "BetaMessage"): MESSAGE_MODEL,
    ("google", "GenerateContentResponse"): GENERATE_CONTENT_MODEL,
}
# Packages whose classes are judged by class alone: an unknown class from these is not an
# LLM response (no shape guessing on, say, an OpenAI ``Model`` or a google ``Candidate``).
_SDK_PACKAGES = frozenset(("openai", "anthropic", "google"))

# The value of the ``object`` field of OpenAI JSON -> kind.
_OPENAI_OBJECTS: dict[object, _Kind] = {
    "chat.completion": CHAT,
    "text_completion": COMPLETION,
    "response": RESPONSE,
}


class _ByShape:
    """Verdict for classes whose instances are judged one by one, by their fields."""


_SHAPE = _ByShape()
_NOT_LLM = None
_by_class: dict[type, _Kind | _ByShape | None] = {}


def _classify(cls: type) -> _Kind | _ByShape | None:
    if cls.__module__ == "builtins" and cls is not dict:
        return _NOT_LLM  # str, int, list, None...: never a response
    if issubclass(cls, dict):
        return _SHAPE
    for klass in cls.__mro__:
        package = klass.__module__.partition(".")[0]
        kind = _SDK_CLASSES.get((package, klass.__name__))
        if kind is not None:
            return kind
    if cls.__module__.partition(".")[0] in _SDK_PACKAGES:
        return _NOT_LLM
    return _SHAPE


def _kind_by_shape(response: object) -> _Kind | None:
    """Recognise OpenAI, Anthropic and Gemini JSON (or look-alike objects) by their fields."""
    obj = get(response, "object")
    if isinstance(obj, str):
        kind = _OPENAI_OBJECTS.get(obj)
        if kind is not None:
            return kind
        if obj == "list" and get(response, "usage") is not None:
            return EMBEDDINGS
        return None
    if get(response, "type") == "message":
        return MESSAGE
    if isinstance(response, dict):
        if "usageMetadata" in response or "usage_metadata" in response or "candidates" in response:
            return GENERATE_CONTENT
        if "choices" in response and "usage" in response:
            return CHAT  # OpenAI-compatible JSON that leaves out "object"
        return None
    # An object of an unknown class: only when its fields say so unambiguously.
    if not isinstance(get(response, "model"), str) and gemini.model_version(response) is None:
        return None
    if get2(response, "usage_metadata", "usageMetadata") is not None:
        return GENERATE_CONTENT
    if get(response, "choices") is not None and get(response, "usage") is not None:
        return CHAT
    if _has_message_fields(response):
        return MESSAGE
    return None


def _has_message_fields(response: object) -> bool:
    """An Anthropic ``Message`` look-alike without ``type``, recognised as llm-toll 0.13 did:
    ``stop_reason`` and ``content`` present, and a usage with ``input_tokens``."""
    return (
        hasattr(response, "stop_reason")
        and hasattr(response, "content")
        and get(get(response, "usage"), "input_tokens") is not None
    )


def _kind(response: object) -> _Kind | None:
    cls = type(response)
    try:
        verdict = _by_class[cls]
    except KeyError:
        verdict = _by_class[cls] = _classify(cls)
    if isinstance(verdict, _ByShape):
        return _kind_by_shape(response)
    return verdict


def extract_usage(response: object) -> ExtractedUsage | None:
    """The usage reported in ``response``.

    Returns None when ``response`` is not an LLM response at all. Raises
    :class:`~llm_toll.usage._base.UsageError` (naming the provider and the field) when it is
    one but its usage is missing, None, negative, not an integer, implausibly large or
    inconsistent (more cached than input tokens...).
    """
    kind = _kind(response)
    return None if kind is None else kind.extract(response)


def response_text(response: object) -> str:
    """The generated text of a non-streamed response ("" if none or not a response).

    For estimating output tokens when usage is missing or malformed; never raises.
    """
    try:
        kind = _kind(response)
        return "" if kind is None else kind.text(response)
    except Exception:
        return ""
