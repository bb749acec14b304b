"""LiteLLM's front door: its requests go through the openai and anthropic SDKs, whose hooks
gate them, but LiteLLM wraps whatever its SDK call raises in an error of its own
(``InternalServerError``). A refusal of llm_toll found in that chain is raised as it is, so
``except BudgetExceededError`` works around ``litellm.completion`` as around the SDK's own
calls; any other error passes through unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError

# LiteLLM's public calls that send a request through a hooked SDK.
SYNC_CALLS = ("completion", "text_completion", "embedding", "responses")
ASYNC_CALLS = ("acompletion", "atext_completion", "aembedding", "aresponses")
# How far down an error's chain a refusal is looked for (LiteLLM wraps two or three deep).
_MAX_DEPTH = 16


def refusal_in(error: BaseException) -> BaseException | None:
    """The refusal of llm_toll that ``error`` wraps (through ``__cause__`` or
    ``__context__``); None when it wraps none."""
    seen: set[int] = set()
    link: BaseException | None = error.__cause__ or error.__context__
    while link is not None and id(link) not in seen and len(seen) < _MAX_DEPTH:
        if isinstance(link, (BudgetExceededError, LocalRateLimitError)):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def sync_call(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return wrapped(*args, **kwargs)
    except Exception as error:
        refusal = refusal_in(error)
        if refusal is None:
            raise
        raise refusal from None


async def async_call(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    except Exception as error:
        refusal = refusal_in(error)
        if refusal is None:
            raise
        raise refusal from None
