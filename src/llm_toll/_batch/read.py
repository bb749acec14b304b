"""Reading batch results: OpenAI Batch API output files and Anthropic Message Batches
results, in whatever form a user holds them.

- OpenAI: each line of the output file is ``{"id", "custom_id", "response": {"status_code",
  "request_id", "body"}, "error"}``; ``body`` is a ``chat.completion``, ``response``,
  ``text_completion`` or embeddings ``list``.
- Anthropic: each line is ``{"custom_id", "result": {"type": "succeeded", "message"}}``, or
  a result of type ``errored``, ``canceled`` or ``expired``; the SDK's
  ``client.messages.batches.results(id)`` yields them as ``MessageBatchIndividualResponse``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llm_toll.usage._fields import get, text_of

Status = Literal["succeeded", "not_charged", "unreadable"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One result of a batch, as far as recording it goes."""

    status: Status
    provider: str | None = None
    """``openai`` or ``anthropic`` (the semantic-convention names)."""
    body: object = None
    """The response a succeeded result carries (a dict, or the SDK's object)."""
    key: str | None = None
    """What makes this result itself: the provider's id of it, else a digest of it."""
    why: str = ""
    """For an unreadable result: what was wrong."""


def items_of(source: object) -> Iterator[object]:
    """The results in ``source``: JSONL bytes or text, a path to a JSONL file, what
    ``client.files.content(...)`` returns (its ``.content`` bytes), or an iterable of
    results (dicts, SDK objects or JSONL lines). A JSONL line that is not JSON is yielded
    as it is (and found unreadable)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from _lines(bytes(source).decode("utf-8"))
        return
    if isinstance(source, str):
        if source.lstrip().startswith("{"):  # a path never starts with a brace
            yield from _lines(source)
        else:
            yield from _lines(Path(source).read_text(encoding="utf-8"))
        return
    if isinstance(source, os.PathLike):
        yield from _lines(Path(source).read_text(encoding="utf-8"))
        return
    content = getattr(source, "content", None)
    if isinstance(content, bytes):  # openai's HttpxBinaryResponseContent
        yield from _lines(content.decode("utf-8"))
        return
    if isinstance(source, dict) or not isinstance(source, Iterable):
        raise TypeError(
            "record_batch() takes the batch's results: JSONL bytes or text, a path to a JSONL "
            "file, what client.files.content(...) returns, or an iterable of results "
            f"(such as client.messages.batches.results(...)); got {type(source).__name__}"
        )
    for item in source:
        if isinstance(item, (bytes, str)):
            yield from _lines(item.decode("utf-8") if isinstance(item, bytes) else item)
        else:
            yield item


def _lines(text: str) -> Iterator[object]:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            yield line


def read_result(item: object) -> BatchResult:
    """What ``item`` (one line of a batch's results) says."""
    result = get(item, "result")
    if result is not None:
        return _anthropic(item, result)
    if isinstance(item, dict) and ("response" in item or "error" in item):
        return _openai(item)
    response = get(item, "response")
    if response is not None and not isinstance(item, (str, bytes)):
        return _openai(item)
    return BatchResult("unreadable", why="neither an OpenAI nor an Anthropic batch result")


def _openai(item: object) -> BatchResult:
    response = get(item, "response")
    status = get(response, "status_code")
    body = get(response, "body")
    if get(item, "error") is not None or response is None or body is None:
        return BatchResult("not_charged", "openai")
    if not isinstance(status, int) or not 200 <= status < 300:
        return BatchResult("not_charged", "openai")
    own_id = text_of(get(item, "id")) or text_of(get(body, "id"))
    return BatchResult("succeeded", "openai", body, _key("openai", own_id, item))


def _anthropic(item: object, result: object) -> BatchResult:
    if get(result, "type") != "succeeded":  # errored, canceled, expired: not billed
        return BatchResult("not_charged", "anthropic")
    message = get(result, "message")
    if message is None:
        return BatchResult("unreadable", "anthropic", why="a succeeded result without message")
    return BatchResult(
        "succeeded", "anthropic", message, _key("anthropic", text_of(get(message, "id")), item)
    )


def _key(provider: str, own_id: str | None, item: object) -> str:
    """The record id of a result: the provider's own id of it (unique across batches,
    unlike ``custom_id``), else a digest of the whole result."""
    if own_id:
        return f"batch:{provider}:{own_id}"
    return f"batch:{provider}:sha256:{_digest(item)}"


def _digest(item: object) -> str:
    dump = getattr(item, "model_dump", None)
    data = dump(mode="json") if callable(dump) else item
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
