"""Proxies for streams: an SDK stream returned by a decorated function or by a hooked
request, metered as it is read.

A proxy is transparent (wrapt's ObjectProxy: ``isinstance`` and every attribute are the
stream's own, so the SDKs' stream helpers and frameworks take it as the stream) and finishes
the call once, on whichever comes first: the stream's final usage item (a reader may stop
there and never exhaust it), exhaustion, ``break`` followed by ``close()`` or leaving a
``with`` block, an exception mid-stream, or garbage collection of a stream left half-read.
Imported when a first stream needs one: wrapt is not part of ``import llm_toll``.
"""

from __future__ import annotations

from typing import Any

import wrapt

from llm_toll._call.call import Call
from llm_toll._call.streams import StreamMeter


class _StreamProxy(wrapt.ObjectProxy[Any]):
    """What both proxies share: the stream (a transparent proxy: ``isinstance`` and every
    attribute are the stream's own), its call and its meter."""

    def __init__(self, stream: Any, call: Call, meter: StreamMeter | None = None) -> None:
        """``meter``: the meter of a call whose response is read another way too (a raw
        response's bytes): whichever way ends first finishes the call."""
        super().__init__(stream)
        self._self_call = call
        self._self_meter = StreamMeter(call.plan, call, stream) if meter is None else meter
        self._self_iterator: Any = None

    @property
    def _self_reading(self) -> bool:
        """Whether the stream has been asked for its first item (it reads from then on)."""
        return self._self_iterator is not None

    def __del__(self) -> None:
        meter = getattr(self, "_self_meter", None)
        if meter is not None and not meter.done:
            meter.finish_from_finalizer()


class SyncStreamProxy(_StreamProxy):
    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        if self._self_iterator is None:
            self._self_iterator = iter(self.__wrapped__)
        call = self._self_call
        token = call.attach()
        try:
            item = next(self._self_iterator)
        except StopIteration:
            self._self_meter.finish(None)
            raise
        except BaseException as error:
            self._self_meter.finish(error)
            raise
        finally:
            call.detach(token)
        meter = self._self_meter
        meter.feed(item)
        if meter.accumulator.finished:
            meter.finish(None)
        elif meter.limit is not None and (overrun := meter.overrun()) is not None:
            try:
                close = getattr(self.__wrapped__, "close", None)
                if close is not None:
                    close()
            finally:
                meter.finish(overrun)
            raise overrun
        return item

    def close(self) -> None:
        try:
            close = getattr(self.__wrapped__, "close", None)
            if close is not None:
                close()
        finally:
            self._self_meter.finish(None)

    def __enter__(self) -> SyncStreamProxy:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            if exit_ is not None:
                exit_(*exc_info)
            else:  # a stream that is not a context manager is still closed on leaving
                self.__wrapped__.close()
        finally:
            self._self_meter.finish(exc_info[1])


class AsyncStreamProxy(_StreamProxy):
    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        if self._self_iterator is None:
            self._self_iterator = self.__wrapped__.__aiter__()
        call = self._self_call
        token = call.attach()
        try:
            item = await self._self_iterator.__anext__()
        except StopAsyncIteration:
            call.detach(token)
            await self._self_meter.finish_async(None)
            raise
        except BaseException as error:
            call.detach(token)
            await self._self_meter.finish_async(error)
            raise
        call.detach(token)
        meter = self._self_meter
        meter.feed(item)
        if meter.accumulator.finished:
            await meter.finish_async(None)
        elif meter.limit is not None and (overrun := meter.overrun()) is not None:
            await self._close_and_finish(overrun)
            raise overrun
        return item

    async def aclose(self) -> None:
        await self._close_and_finish(None)

    async def _close_and_finish(self, error: BaseException | None) -> None:
        """Close the SDK's stream (``aclose``, or an async or sync ``close``), then record
        the call, ended by ``error`` (a stream cut past its reservation) or by the caller."""
        stream = self.__wrapped__
        try:
            closer = getattr(stream, "aclose", None) or getattr(stream, "close", None)
            if closer is not None:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
        finally:
            await self._self_meter.finish_async(error)

    async def close(self) -> None:  # OpenAI's and Anthropic's async streams call it close()
        await self.aclose()

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            if exit_ is not None:
                await exit_(*exc_info)
            else:
                await self.aclose()
                return
        finally:
            await self._self_meter.finish_async(exc_info[1])
