"""A raw response of a streamed request (``with_raw_response`` or ``with_streaming_response``
and ``stream=True``), handed back before its body is read: however the caller reads it, the
call is recorded once.

``parse()`` gives the SDK's stream, metered by the stream proxy once it is iterated; every
other read is metered by the body tee (``_body_tee``), on the same meter, so that a response
both parsed and read is recorded once, from the read that came first; ``close()`` (also
leaving ``with_streaming_response``'s block) records what was read by then.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import wrapt

from llm_toll._call.call import Call
from llm_toll._call.proxies import AsyncStreamProxy, SyncStreamProxy
from llm_toll._call.streams import StreamMeter
from llm_toll._hooks._body_tee import BodyTee, tee_body


class RawStreamResponse(wrapt.ObjectProxy[Any]):
    """The SDK's raw response, every attribute its own; ``parse()`` and ``close()`` metered."""

    def __init__(
        self,
        response: Any,
        call: Call,
        proxy: type[SyncStreamProxy] | type[AsyncStreamProxy],
    ) -> None:
        super().__init__(response)
        meter = StreamMeter(call.plan, call)
        self._self_call = call
        self._self_meter = meter
        self._self_proxy = proxy
        self._self_stream: Any = None
        self._self_tee = BodyTee(meter, _sse_decoder(response))
        tee_body(response.http_response, self._self_tee)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if inspect.isawaitable(parsed):  # AsyncAPIResponse.parse() is a coroutine
            return self._parse_async(parsed)
        return self._metered(parsed)

    async def _parse_async(self, parsed: Awaitable[Any]) -> Any:
        return self._metered(await parsed)

    def _metered(self, parsed: Any) -> Any:
        if self._self_stream is None:
            if self._self_meter.done:  # its body was read, and recorded, already
                return parsed
            self._self_stream = self._self_proxy(parsed, self._self_call, self._self_meter)
            self._self_tee.parsed_into(self._self_stream)
        return self._self_stream

    @property
    def close(self) -> Callable[[], Any]:
        """The response's own ``close`` (an AttributeError for a response without one, as
        without the proxy), which records the call with what was read of it."""
        close = self.__wrapped__.close
        meter = self._self_meter

        def closing() -> Any:
            try:
                closed = close()
            except BaseException:
                meter.finish(None)
                raise
            if inspect.isawaitable(closed):  # AsyncAPIResponse.close() is a coroutine
                return _closed_async(closed, meter)
            meter.finish(None)
            return closed

        return closing


async def _closed_async(closed: Awaitable[Any], meter: StreamMeter) -> Any:
    try:
        return await closed
    finally:
        await meter.finish_async(None)


def _sse_decoder(response: Any) -> Any:
    """The decoder of server-sent events the SDK's own streams use; None if there is none."""
    try:
        return response._client._make_sse_decoder()
    except Exception:
        return None
