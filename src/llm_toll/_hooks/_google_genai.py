"""The hook of the google-genai SDK: every ``generate_content`` (sync, ``client.aio``, the
stream variants, each step of automatic function calling) goes through its API client's
``request`` / ``request_streamed`` and their async twins, with the model in the path and the
JSON body in hand; the response is the JSON text the SDK parses."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from llm_toll._call.call import Call
from llm_toll._call.run import current_run
from llm_toll._call.streams import StreamMeter
from llm_toll._hooks._request import Body, ProviderRequest, send, send_async
from llm_toll._worker import worker

_GENERATE = re.compile(r"models/([^/:]+):(?:generateContent|streamGenerateContent)$")
_CAP_KEYS = (("generationConfig", "maxOutputTokens"),)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _body(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs.get("request_dict", args[2] if len(args) > 2 else None)


def _describe(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ProviderRequest | None:
    """``request(http_method, path, request_dict, http_options)``: a generate_content call?"""
    path = kwargs.get("path", args[1] if len(args) > 1 else "")
    body = _body(args, kwargs)
    found = _GENERATE.search(str(path).split("?", 1)[0])
    if found is None or not isinstance(body, dict):
        return None
    provider = "gcp.vertex_ai" if getattr(instance, "vertexai", False) else "gcp.gemini"
    return ProviderRequest(provider, {**body, "model": found.group(1)}, _CAP_KEYS)


def _sender(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[Body | None], Any]:
    """Sends the request, with ``request_dict`` replaced when a body is given."""

    def send_it(body: Body | None) -> Any:
        if body is None:
            return wrapped(*args, **kwargs)
        if "request_dict" in kwargs:
            return wrapped(*args, **{**kwargs, "request_dict": body})
        return wrapped(*args[:2], body, *args[3:], **kwargs)

    return send_it


def _json(response: Any) -> Any:
    """The JSON an SDK response holds (``body``: its text); None if it holds none."""
    body = getattr(response, "body", None)
    if not isinstance(body, str) or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def request(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    run = current_run()
    if run is None:
        return wrapped(*args, **kwargs)
    described = _describe(instance, args, kwargs)
    if described is None:
        return wrapped(*args, **kwargs)

    def read(call: Call, response: Any) -> Any:
        call.finish(_json(response))
        return response

    return send(
        run,
        described,
        sent=_body(args, kwargs),
        send_it=_sender(wrapped, args, kwargs),
        read=read,
    )


def request_streamed(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    run = current_run()
    if run is None:
        return wrapped(*args, **kwargs)
    described = _describe(instance, args, kwargs)
    if described is None:
        return wrapped(*args, **kwargs)
    # A generator: the request is sent when it is first iterated, as the SDK's own is.
    sent = _body(args, kwargs)
    return send(
        run,
        described,
        sent=sent,
        send_it=_sender(wrapped, args, kwargs),
        read=_metered_chunks,
    )


async def async_request(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    run = current_run()
    if run is None:
        return await wrapped(*args, **kwargs)
    described = _describe(instance, args, kwargs)
    if described is None:
        return await wrapped(*args, **kwargs)

    async def read(call: Call, response: Any) -> Any:
        await call.finish_async(_json(response))
        return response

    sent = _body(args, kwargs)
    return await send_async(
        run, described, sent=sent, send_it=_sender(wrapped, args, kwargs), read=read
    )


async def async_request_streamed(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    run = current_run()
    if run is None:
        return await wrapped(*args, **kwargs)
    described = _describe(instance, args, kwargs)
    if described is None:
        return await wrapped(*args, **kwargs)

    async def read(call: Call, chunks: Any) -> Any:
        return _metered_async_chunks(call, chunks)

    sent = _body(args, kwargs)
    return await send_async(
        run, described, sent=sent, send_it=_sender(wrapped, args, kwargs), read=read
    )


def _metered_chunks(call: Call, chunks: Iterator[Any]) -> Iterator[Any]:
    """The SDK's chunks, metered. Its request is sent at the first chunk: an error before
    any chunk is a failed request (nothing to record), one after is a stream cut short."""
    meter = StreamMeter(call.plan, call)
    seen = False
    error: BaseException | None = None
    try:
        for chunk in chunks:
            seen = True
            meter.feed(_json(chunk))
            overrun = meter.overrun()
            if overrun is not None:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
                raise overrun
            yield chunk
    except BaseException as raised:  # GeneratorExit: stopped early; what was seen counts
        error = None if isinstance(raised, GeneratorExit) else raised
        raise
    finally:
        if error is not None and not seen and meter.claim():
            call.fail(error)
        else:
            meter.finish(error)


async def _metered_async_chunks(call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    meter = StreamMeter(call.plan, call)
    seen = False
    error: BaseException | None = None
    try:
        async for chunk in chunks:
            seen = True
            meter.feed(_json(chunk))
            overrun = meter.overrun()
            if overrun is not None:
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()
                raise overrun
            yield chunk
    except BaseException as raised:
        error = None if isinstance(raised, GeneratorExit) else raised
        raise
    finally:
        if error is not None and not seen and meter.claim():
            worker.submit(call.fail, error)
        else:
            await meter.finish_async(error)
