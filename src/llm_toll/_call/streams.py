"""Streams: metered chunk by chunk, and their call finished exactly once.

A proxy for a stream returned by a decorated function keeps the SDK stream's own API
(iteration, context manager, ``close()``, ``.response`` and every other attribute by
delegation) and finishes the call once, on whichever comes first: exhaustion, ``break``
followed by ``close()`` or leaving a ``with`` block, an exception mid-stream, or garbage
collection of a stream left half-read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from llm_toll._call.call import Call
from llm_toll._worker import worker
from llm_toll.usage import StreamAccumulator, UsageError, request_text
from llm_toll.usage.custom import coerce_custom_usage


def is_sync_stream(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__next__") and hasattr(value, "close")


def is_async_stream(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__aiter__") and hasattr(kind, "__anext__")


def sdk_request_text(stream: object) -> str:
    """The prompt of the HTTP request behind an SDK stream (OpenAI's and Anthropic's keep
    it as ``stream.response.request``), for estimating input tokens when usage is missing."""
    request = getattr(getattr(stream, "response", None), "request", None)
    content = getattr(request, "content", None)
    if not isinstance(content, bytes) or not content:
        return ""
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    return request_text((), body) if isinstance(body, dict) else ""


class StreamMeter:
    """Meters a stream chunk by chunk and finishes its call once: shared by both proxies
    and the generator wrappers."""

    __slots__ = ("_done", "_lock", "accumulator", "call", "stream")

    def __init__(self, call: Call, stream: object = None) -> None:
        self.call = call
        self.stream = stream
        self.accumulator = StreamAccumulator()
        self._done = False
        self._lock = threading.Lock()

    def _finish(self, error: BaseException | None) -> None:
        try:
            reported = self.accumulator.result() is not None
        except UsageError:
            reported = False
        hint = "" if reported else sdk_request_text(self.stream)
        self.call.finish_stream(self.accumulator, error, hint)

    def feed(self, item: object) -> None:
        self.accumulator.add(item)
        extractor = self.call.plan.extract_usage
        if extractor is not None:
            try:
                custom = coerce_custom_usage(extractor(item))
            except Exception:  # judged at the end, from what the accumulator saw
                return
            if custom is not None:
                self.accumulator.override(custom)

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


class _StreamProxy:
    """What both proxies share: the stream, its meter, and delegation of the rest."""

    def __init__(self, stream: Any, call: Call) -> None:
        self._stream = stream
        self._meter = StreamMeter(call, stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        meter = self.__dict__.get("_meter")
        if meter is not None and not meter.done:
            meter.finish_from_finalizer()


class SyncStreamProxy(_StreamProxy, Iterator[Any]):
    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream, call)
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self._stream)
        token = self._meter.call.attach()
        try:
            item = next(self._iterator)
        except StopIteration:
            self._meter.finish(None)
            raise
        except BaseException as error:
            self._meter.finish(error)
            raise
        finally:
            self._meter.call.detach(token)
        self._meter.feed(item)
        return item

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._meter.finish(None)

    def __enter__(self) -> SyncStreamProxy:
        enter = getattr(self._stream, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            exit_ = getattr(self._stream, "__exit__", None)
            if exit_ is not None:
                exit_(*exc_info)
            else:  # a stream that is not a context manager is still closed on leaving
                self._stream.close()
        finally:
            self._meter.finish(exc_info[1])


class AsyncStreamProxy(_StreamProxy, AsyncIterator[Any]):
    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream, call)
        self._iterator: AsyncIterator[Any] | None = None

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()
        token = self._meter.call.attach()
        try:
            item = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._meter.call.detach(token)
            await self._meter.finish_async(None)
            raise
        except BaseException as error:
            self._meter.call.detach(token)
            await self._meter.finish_async(error)
            raise
        self._meter.call.detach(token)
        self._meter.feed(item)
        return item

    async def aclose(self) -> None:
        try:
            closer = getattr(self._stream, "aclose", None) or getattr(self._stream, "close", None)
            if closer is not None:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
        finally:
            await self._meter.finish_async(None)

    # OpenAI's and Anthropic's async streams call it close().
    close = aclose

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self._stream, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            exit_ = getattr(self._stream, "__aexit__", None)
            if exit_ is not None:
                await exit_(*exc_info)
            else:
                await self.aclose()
                return
        finally:
            await self._meter.finish_async(exc_info[1])
