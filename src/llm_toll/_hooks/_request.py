"""One provider request seen by a hook: gated in its run before it is sent, its span current
while the SDK sends it, recorded once from its response or stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from llm_toll._call.call import Call
from llm_toll._call.gates import Admission, admit, admit_async
from llm_toll._call.run import Run
from llm_toll._worker import worker

CapKeys = tuple[tuple[str, ...], ...]
"""Where a request body holds its output-token cap: key paths, the first one set when the
body has none; empty for a request that produces no output tokens (embeddings)."""

Body = dict[str, Any]


class ProviderRequest(NamedTuple):
    """What a hook read from a request before it is sent."""

    provider: str
    """The semantic-convention provider name: ``openai``, ``anthropic``, ``gcp.gemini``."""
    body: Body
    """The request's JSON body, with ``model`` in it (for Gemini, from the URL)."""
    cap_keys: CapKeys

    def capped(self, sent: Body, cap: int) -> Body:
        """``sent`` (the body as the SDK sends it) with output cap ``cap``: each cap key it
        has is lowered, the first one is set when it has none. Nested dicts are copied, the
        caller's own are left as they were."""
        present = [path for path in self.cap_keys if _lookup(sent, path) is not None]
        result = dict(sent)
        for path in present or self.cap_keys[:1]:
            node = result
            for name in path[:-1]:
                inner = node.get(name)
                node[name] = dict(inner) if isinstance(inner, dict) else {}
                node = node[name]
            node[path[-1]] = cap
        return result


def _lookup(body: Body, path: tuple[str, ...]) -> Any:
    node: Any = body
    for name in path:
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


def _to_send(request: ProviderRequest, admission: Admission, sent: Body) -> Body | None:
    """The body to send instead of ``sent`` when a strict grant lowered its cap."""
    granted = admission.granted
    if granted is None or not granted.lowered or granted.output_cap is None:
        return None
    return request.capped(sent, granted.output_cap)


def send(
    run: Run,
    request: ProviderRequest,
    *,
    sent: Body,
    send_it: Callable[[Body | None], Any],
    read: Callable[[Call, Any], Any],
) -> Any:
    """Gate ``request`` in ``run`` (a refusal raises before anything is sent), send it with
    its span current, and hand the result to ``read``, which records it (or wraps a stream
    that records it when it ends) and returns what the SDK's caller gets. ``send_it`` gets
    the body to send in place of ``sent`` (a strict request's lowered cap), or None."""
    plan = run.plan
    generates = bool(request.cap_keys)
    admission = admit(plan, (), request.body, run=run, generates=generates)
    call = Call(plan, (), request.body, admission, run=run, provider=request.provider)
    token = call.attach()
    try:
        result = send_it(_to_send(request, admission, sent))
    except BaseException as error:
        call.detach(token)
        call.fail(error)
        raise
    call.detach(token)
    return read(call, result)


async def send_async(
    run: Run,
    request: ProviderRequest,
    *,
    sent: Body,
    send_it: Callable[[Body | None], Awaitable[Any]],
    read: Callable[[Call, Any], Awaitable[Any]],
) -> Any:
    """``send`` for async clients: the gates' store I/O and the record run off the loop."""
    plan = run.plan
    generates = bool(request.cap_keys)
    admission = await admit_async(plan, (), request.body, run=run, generates=generates)
    call = Call(plan, (), request.body, admission, run=run, provider=request.provider)
    token = call.attach()
    try:
        result = await send_it(_to_send(request, admission, sent))
    except BaseException as error:
        call.detach(token)
        worker.submit(call.fail, error)
        raise
    call.detach(token)
    return await read(call, result)
