"""LiteLLM's front door: its requests go through the openai SDK, whose hooks gate them, but
LiteLLM maps whatever its SDK call raises into an error of its own (an
``InternalServerError``, an ``APIConnectionError``). Every call of LiteLLM's (completion,
text completion, embedding; sync, async and streamed) maps through one function,
``exception_type``: hooked there, a refusal of llm_toll found in the error's chain is handed
back as it is, so ``except BudgetExceededError`` works around ``litellm.completion`` as
around the SDK's own calls; any other error is mapped as LiteLLM maps it.

A stream's error met mid-stream is mapped there too, then wrapped once more for LiteLLM's
Router: that wrapping is hooked as well, where every stream of LiteLLM's raises it.

LiteLLM's modules bind ``exception_type`` by name (``from ... import exception_type``) and
look it up as a global when they raise: the hook wraps it in every module that holds it, so
it is there however the program imported ``completion`` and its twins, before or after the
hooks were installed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError

MAPPER_MODULE = "litellm.litellm_core_utils.exception_mapping_utils"
MAPPER = "exception_type"
# Where LiteLLM's stream raises every error met mid-stream, mapped, then wrapped in a
# ``MidStreamFallbackError`` (for its Router to fall back on) unless it is a client error.
STREAM_MODULE = "litellm.litellm_core_utils.streaming_handler"
STREAM_ERRORS = "CustomStreamWrapper._handle_stream_fallback_error"
# How far down an error's chain a refusal is looked for (LiteLLM wraps two or three deep).
_MAX_DEPTH = 16


def refusal_in(error: BaseException) -> BaseException | None:
    """The refusal of llm_toll that ``error`` is, or wraps (through ``__cause__`` or
    ``__context__``); None when it is none and wraps none."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen and len(seen) < _MAX_DEPTH:
        if isinstance(link, (BudgetExceededError, LocalRateLimitError)):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def map_exception(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``exception_type(model, original_exception, ...)``, whose callers raise what it
    returns (or raises): a refusal comes back as it is, unmapped."""
    original = kwargs.get("original_exception", args[1] if len(args) > 1 else None)
    refusal = refusal_in(original) if isinstance(original, BaseException) else None
    if refusal is None:
        return wrapped(*args, **kwargs)
    # Raised where LiteLLM handles its own wrapping of it: that wrapping is noise.
    refusal.__suppress_context__ = True
    # A Router reads an error's own ``num_retries`` before its policy: a refusal is not
    # retried (nothing was sent; another try is refused again, after the Router's backoff).
    refusal.num_retries = 0  # type: ignore[attr-defined]
    return refusal


def stream_error(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A stream cut by llm_toll (past its reservation) raises the refusal, not LiteLLM's
    fallback error: a Router must not spend again on another model."""
    try:
        return wrapped(*args, **kwargs)
    except Exception as error:
        refusal = refusal_in(error)
        if refusal is None:
            raise
        raise refusal from None


def holders() -> list[str]:
    """LiteLLM's modules that hold its own ``exception_type``, not hooked: the one that
    defines it, and each that bound it by name. (A module imported once the hooks are in
    binds the hooked one.)"""
    own = getattr(sys.modules[MAPPER_MODULE], MAPPER)
    if getattr(own, "_self_wrapper", None) is map_exception:
        own = own.__wrapped__
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if (name == "litellm" or name.startswith("litellm."))
        and getattr(module, "__dict__", {}).get(MAPPER) is own
    )
