"""Streams: metered chunk by chunk, and their call finished exactly once (the proxies that
wrap an SDK stream are in ``_call.proxies``)."""

from __future__ import annotations

import json
import threading

from llm_toll._budget.once import claims
from llm_toll._budget.response_ids import provider_response_id
from llm_toll._call.call import Call
from llm_toll._call.plan import Plan
from llm_toll._worker import worker
from llm_toll.exceptions import BudgetExceededError
from llm_toll.usage import StreamAccumulator, request_text
from llm_toll.usage._custom import coerce_custom_usage

# What each type of result is, found once per type: asking a pydantic model's class for an
# attribute it lacks raises inside pydantic (several µs), on every call otherwise.
_KINDS: dict[type, tuple[bool, bool]] = {}
_MAX_KINDS = 256  # classes made at run time cannot grow it without bound


def _kind(value: object) -> tuple[bool, bool]:
    """(sync stream, async stream), asked of the class: an instance's attributes may raise."""
    kind = type(value)
    found = _KINDS.get(kind)
    if found is None:
        found = (
            hasattr(kind, "__next__") and hasattr(kind, "close"),
            hasattr(kind, "__aiter__") and hasattr(kind, "__anext__"),
        )
        if len(_KINDS) < _MAX_KINDS:
            _KINDS[kind] = found
    return found


def is_sync_stream(value: object) -> bool:
    return _kind(value)[0]


def is_async_stream(value: object) -> bool:
    return _kind(value)[1]


def sdk_request_text(stream: object) -> str:
    """The prompt of the HTTP request behind an SDK stream (OpenAI's and Anthropic's keep
    it as ``stream.response.request``), for estimating input tokens when usage is missing.
    Never raises: "" when there is none, or it cannot be read."""
    try:
        request = getattr(getattr(stream, "response", None), "request", None)
        content = getattr(request, "content", None)
        body = json.loads(content) if isinstance(content, bytes) and content else None
    except Exception:
        return ""
    return request_text((), body) if isinstance(body, dict) else ""


class StreamMeter:
    """Meters a stream chunk by chunk and finishes its call once: shared by both proxies
    and the generator wrappers."""

    __slots__ = ("_done", "_lock", "accumulator", "call", "limit", "plan", "stream")

    def __init__(self, plan: Plan, call: Call | None = None, stream: object = None) -> None:
        self.plan = plan
        self.call = call
        """The call to finish; a generator's is known only at its end (None: nothing to
        record, its requests were hooked)."""
        self.stream = stream
        granted = None if call is None else call.granted
        self.limit = None if granted is None else granted.output_limit
        """A strict request's output tokens paid for: a stream that shows more is cut."""
        self.accumulator = StreamAccumulator()
        self._done = False
        self._lock = threading.Lock()

    def _finish(self, error: BaseException | None) -> None:
        if self.call is not None:
            self.call.finish_stream(self.accumulator, error, self._request_text)

    def _request_text(self) -> str:
        return sdk_request_text(self.stream)

    def feed(self, item: object) -> None:
        accumulator = self.accumulator
        unnamed = accumulator.response_id is None
        accumulator.add(item)
        if unnamed and accumulator.response_id is not None and self.call is not None:
            # Ours from its first event: a framework's callback that sees the stream end
            # (LiteLLM's may run before the last event reaches this meter) records it not.
            claims.claim(provider_response_id(accumulator.response_id), self.call.by)
        extractor = self.plan.extract_usage
        if extractor is not None:
            try:
                custom = coerce_custom_usage(extractor(item))
            except Exception:  # judged at the end, from what the accumulator saw
                return
            if custom is not None:
                self.accumulator.override(custom)

    def overrun(self) -> BudgetExceededError | None:
        """The error to cut the stream with, once it has carried more pieces of text than
        its reservation pays for tokens (each piece is at least one token)."""
        limit = self.limit
        if limit is None or self.accumulator.text_pieces <= limit:
            return None
        from llm_toll._call.request_gate import stream_overrun

        return stream_overrun(self.plan, limit)

    def claim(self) -> bool:
        """True exactly once: for the one caller that must finish the call."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    @property
    def done(self) -> bool:
        return self._done

    def finish(self, error: BaseException | None) -> None:
        if self.claim():
            self._finish(error)

    async def finish_async(self, error: BaseException | None) -> None:
        if self.claim():
            await worker.run(self._finish, error)

    def finish_from_finalizer(self) -> None:
        """Garbage collection may run on an event loop thread: finish in the worker."""
        if self.claim():
            worker.submit(self._finish, None)
