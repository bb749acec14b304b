"""LiteLLM's Responses API: ``litellm.responses()`` and ``aresponses()`` send a provider's
Responses request (OpenAI's, Azure's...) with LiteLLM's own HTTP client, not the openai SDK,
so the SDK's hooks never see it. Every such request, streamed or not, sync or async, goes
through one method of LiteLLM's HTTP handler, ``response_api_handler`` (which hands an async
call on to ``async_response_api_handler``): both are hooked, with the model, the input and
the request's parameters in hand before LiteLLM builds its body, and the response (a
``ResponsesAPIResponse``, or a stream of Responses events) coming back.

A Responses call that LiteLLM answers through chat completions instead (a provider with no
Responses API of its own) never reaches this handler: it goes through ``litellm.completion``
and the openai SDK, whose hooks record it, once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llm_toll._call.call import Call
from llm_toll._call.proxies import AsyncStreamProxy, SyncStreamProxy
from llm_toll._call.run import current_run
from llm_toll._hooks._request import Body, ProviderRequest, send, send_async

MODULE = "litellm.llms.custom_httpx.llm_http_handler"
SYNC = "BaseLLMHTTPHandler.response_api_handler"
ASYNC = "BaseLLMHTTPHandler.async_response_api_handler"

_CAP = "max_output_tokens"
_CAP_KEYS = ((_CAP,),)
# The handler's parameters after ``self``, by name (LiteLLM passes them by keyword) and
# position.
_MODEL = ("model", 0)
_INPUT = ("input", 1)
_PARAMS = ("response_api_optional_request_params", 3)
_PROVIDER = ("custom_llm_provider", 4)
_EXTRA_BODY = ("extra_body", 8)
# LiteLLM's provider names -> semantic-convention names (others are kept as they are).
_PROVIDERS = {"azure": "azure.ai.openai", "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai",
              "bedrock": "aws.bedrock"}  # fmt: skip


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], where: tuple[str, int]) -> Any:
    name, index = where
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ProviderRequest | None:
    """The request the handler is about to build: its parameters (``extra_body`` merged
    over them, as LiteLLM merges it into the body), its model and input."""
    params = _argument(args, kwargs, _PARAMS)
    model = _argument(args, kwargs, _MODEL)
    if not isinstance(params, Mapping) or not isinstance(model, str):
        return None
    extra = _argument(args, kwargs, _EXTRA_BODY)
    body = {**params, **(extra if isinstance(extra, Mapping) else {})}
    body.update(model=model, input=_argument(args, kwargs, _INPUT))
    provider = str(_argument(args, kwargs, _PROVIDER) or "openai")
    return ProviderRequest(_PROVIDERS.get(provider, provider), body, _CAP_KEYS)


def _sender(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[Body | None], Any]:
    """Calls the handler; with a body given (a strict grant lowered its cap), with that cap
    in the request's parameters, and in ``extra_body`` when the caller set it there."""

    def send_it(body: Body | None) -> Any:
        if body is None:
            return wrapped(*args, **kwargs)
        cap = body[_CAP]
        call_args, call_kwargs = list(args), dict(kwargs)
        for name, index in (_PARAMS, _EXTRA_BODY):
            given = _argument(args, kwargs, (name, index))
            if not isinstance(given, Mapping) or (name == _EXTRA_BODY[0] and _CAP not in given):
                continue
            if name in kwargs:
                call_kwargs[name] = {**given, _CAP: cap}
            else:
                call_args[index] = {**given, _CAP: cap}
        return wrapped(*call_args, **call_kwargs)

    return send_it


def response_api_handler(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    run = current_run()
    if run is None:  # outside any run: one context-variable read, nothing else
        return wrapped(*args, **kwargs)
    if kwargs.get("_is_async"):  # handed on to ``async_response_api_handler``, hooked too
        return wrapped(*args, **kwargs)
    request = _describe(args, kwargs)
    if request is None:
        return wrapped(*args, **kwargs)
    return send(run, request, sent=request.body, send_it=_sender(wrapped, args, kwargs), read=_read)


async def async_response_api_handler(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    run = current_run()
    if run is None:
        return await wrapped(*args, **kwargs)
    request = _describe(args, kwargs)
    if request is None:
        return await wrapped(*args, **kwargs)
    send_it = _sender(wrapped, args, kwargs)

    async def send_async_it(body: Body | None) -> Any:
        return await send_it(body)

    return await send_async(
        run, request, sent=request.body, send_it=send_async_it, read=_read_async
    )


def _read(call: Call, result: Any) -> Any:
    """A stream of Responses events (LiteLLM's own, or its replay of a whole response as
    one) is metered as it is read; a ``ResponsesAPIResponse`` is recorded now."""
    if hasattr(type(result), "__next__"):
        return SyncStreamProxy(result, call)
    call.finish(result)
    return result


async def _read_async(call: Call, result: Any) -> Any:
    if hasattr(type(result), "__anext__"):
        return AsyncStreamProxy(result, call)
    await call.finish_async(result)
    return result
