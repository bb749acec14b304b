"""One provider request seen by a hook: gated in its run before it is sent, its span current
while the SDK sends it, recorded once from its response or stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from llm_toll._call.call import Call
from llm_toll._call.gates import admit, admit_async
from llm_toll._call.run import Run
from llm_toll._worker import worker


class ProviderRequest(NamedTuple):
    """What a hook read from a request before it is sent."""

    provider: str
    """The semantic-convention provider name: ``openai``, ``anthropic``, ``gcp.gemini``."""
    body: dict[str, Any]
    """The request's JSON body, with ``model`` in it (for Gemini, from the URL)."""


def send(
    run: Run, request: ProviderRequest, send_it: Callable[[], Any], read: Callable[[Call, Any], Any]
) -> Any:
    """Gate ``request`` in ``run`` (a refusal raises before anything is sent), send it with
    its span current, and hand the result to ``read``, which records it (or wraps a stream
    that records it when it ends) and returns what the SDK's caller gets."""
    call = Call(run.plan, (), request.body, admit(run.plan, (), request.body, run=run), run=run,
                provider=request.provider)  # fmt: skip
    token = call.attach()
    try:
        result = send_it()
    except BaseException as error:
        call.detach(token)
        call.fail(error)
        raise
    call.detach(token)
    return read(call, result)


async def send_async(
    run: Run,
    request: ProviderRequest,
    send_it: Callable[[], Awaitable[Any]],
    read: Callable[[Call, Any], Awaitable[Any]],
) -> Any:
    """``send`` for async clients: the gates' store I/O and the record run off the loop."""
    admission = await admit_async(run.plan, (), request.body, run=run)
    call = Call(run.plan, (), request.body, admission, run=run, provider=request.provider)
    token = call.attach()
    try:
        result = await send_it()
    except BaseException as error:
        call.detach(token)
        worker.submit(call.fail, error)
        raise
    call.detach(token)
    return await read(call, result)
