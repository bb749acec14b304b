"""The body of a streamed response, metered from the bytes the caller reads.

A raw response of a streamed request (``with_streaming_response``, ``with_raw_response``)
is read however its caller likes: ``read()``, ``text()``, ``json()``, ``iter_bytes()``,
``iter_text()``, ``iter_lines()``, the HTTP response's own methods, or the SDK's stream.
All of them read the body through the HTTP response's ``iter_bytes()`` (``aiter_bytes()``
in async clients), so the tee sits there, on that one response object: the chunks go on to
the caller unchanged, and the server-sent events they make up (decoded by the SDK's own
decoder) are fed to the call's stream meter as they complete, as the SDK's stream would
have fed it. The call is finished when the body has been read to its end, when reading it
fails or is broken off, or when the HTTP response is garbage-collected unread.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from llm_toll._call.streams import StreamMeter
from llm_toll.exceptions import BudgetExceededError


class _Lines:
    """Cuts bytes into the lines of an event stream (ended by CR, LF or CRLF), as they come."""

    __slots__ = ("_after_cr", "_rest")

    def __init__(self) -> None:
        self._rest: list[bytes] = []  # the start of a line not ended yet
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF cut between two chunks
        self._after_cr = chunk.endswith(b"\r")
        if b"\n" not in chunk and b"\r" not in chunk:
            self._rest.append(chunk)  # joined once its line ends: no quadratic copying
            return []
        lines = b"".join((*self._rest, chunk)).splitlines()
        self._rest = [] if chunk.endswith((b"\n", b"\r")) else [lines.pop()]
        return lines

    def finish(self) -> list[bytes]:
        """The last line, when the body did not end it."""
        rest, self._rest = b"".join(self._rest), []
        return [rest] if rest else []


class BodyTee:
    """What the caller reads of one streamed body, fed to the call's meter event by event."""

    __slots__ = ("_decoder", "_lines", "_stream", "meter", "parsed")

    def __init__(self, meter: StreamMeter, decoder: Any) -> None:
        self.meter = meter
        # The SDK's decoder (``SSEDecoder.decode(line)``); a decoder of another framing has
        # none: then the body is not metered, and the call is recorded estimated.
        self._decoder = decoder if callable(getattr(decoder, "decode", None)) else None
        self._lines = _Lines()
        self._stream: weakref.ref[Any] | None = None
        self.parsed = False
        """The read going on is the parsed stream's, which is metered through its own proxy
        (sharing the meter): the bytes it reads are not fed again, and it finishes the
        call."""

    def parsed_into(self, stream: Any) -> None:
        """The caller parsed the response into the SDK's stream (its proxy). That stream
        meters what it reads; a read of the body another way before that stream is
        iterated is metered here, and finishes the call."""
        self._stream = weakref.ref(stream)  # the stream's collection must not wait on this

    def start_read(self) -> None:
        """A read of the body begins: the parsed stream's once that stream is iterated (it
        reads the body when its first item is asked for), else the caller's own."""
        stream = None if self._stream is None else self._stream()
        self.parsed = stream is not None and stream._self_reading

    def feed(self, chunk: bytes) -> BudgetExceededError | None:
        """Meter the events ``chunk`` completes; the error to cut the body with once a strict
        request's output runs past its reservation. Never raises."""
        meter = self.meter
        if self.parsed or meter.done:  # e.g. read() again: the content kept, replayed
            return None
        self._events(self._lines.feed(chunk))
        return None if meter.limit is None else meter.overrun()

    def _events(self, lines: list[bytes]) -> None:
        decoder = self._decoder
        if decoder is None:
            return
        for line in lines:
            try:
                event = decoder.decode(line.decode("utf-8", "replace"))
                item = None if event is None else json.loads(event.data)
            except Exception:  # "[DONE]", or a broken event: the caller's read goes on
                continue
            if isinstance(item, dict):
                self.meter.feed(item)

    def _ended(self, whole: bool) -> bool:
        """Whether the meter is this tee's to finish; the last event taken in if ``whole``."""
        if self.parsed:
            return False
        if whole and not self.meter.done:
            self._events([*self._lines.finish(), b""])  # b"": ends an event left open
        return True

    def end(self, error: BaseException | None = None, *, whole: bool = False) -> None:
        """The read ended: the body read to its end (``whole``), or failed with ``error``."""
        if self._ended(whole):
            self.meter.finish(error)

    async def end_async(self, error: BaseException | None = None, *, whole: bool = False) -> None:
        if self._ended(whole):
            await self.meter.finish_async(error)

    def abandon(self) -> None:
        """The read was broken off, or the response collected unread: what was seen is
        recorded, in the worker (a collection may run on an event loop)."""
        self.meter.finish_from_finalizer()


def tee_body(response: Any, tee: BodyTee) -> None:
    """Put ``tee`` on the ``iter_bytes()`` and ``aiter_bytes()`` of the HTTP response
    ``response`` (that one object only), and finish its meter when it is collected."""
    # Functions of the response's class, and a weak reference to it: the tee, kept in the
    # response, must not keep it alive (its collection finishes an unread body).
    ref = weakref.ref(response)
    kind = type(response)
    attributes = vars(response)  # not setattr(): the class's methods stay as they are
    attributes["iter_bytes"] = _sync_tee(tee, ref, kind.iter_bytes)
    attributes["aiter_bytes"] = _async_tee(tee, ref, kind.aiter_bytes)
    weakref.finalize(response, tee.abandon)


def _sync_tee(
    tee: BodyTee, ref: weakref.ref[Any], read: Callable[..., Generator[bytes, None, None]]
) -> Callable[..., Iterator[bytes]]:
    def iter_bytes(chunk_size: int | None = None) -> Iterator[bytes]:
        response: Any = ref()  # alive: it is being read
        tee.start_read()
        try:
            with contextlib.closing(read(response, chunk_size)) as chunks:
                for chunk in chunks:
                    cut = tee.feed(chunk)
                    if cut is not None:
                        response.close()
                        raise cut
                    yield chunk
        except GeneratorExit:
            tee.abandon()
            raise
        except BaseException as error:
            tee.end(error)
            raise
        tee.end(whole=True)

    return iter_bytes


def _async_tee(
    tee: BodyTee, ref: weakref.ref[Any], read: Callable[..., AsyncGenerator[bytes, None]]
) -> Callable[..., AsyncIterator[bytes]]:
    async def aiter_bytes(chunk_size: int | None = None) -> AsyncIterator[bytes]:
        response: Any = ref()
        tee.start_read()
        try:
            async with contextlib.aclosing(read(response, chunk_size)) as chunks:
                async for chunk in chunks:
                    cut = tee.feed(chunk)
                    if cut is not None:
                        await response.aclose()
                        raise cut
                    yield chunk
        except GeneratorExit:
            tee.abandon()  # never awaits: the generator may be finalised by the loop
            raise
        except BaseException as error:
            await tee.end_async(error)
            raise
        await tee.end_async(whole=True)

    return aiter_bytes
