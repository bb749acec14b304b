"""The parameters of a decorated function that say what a call of it costs, found once,
when it is decorated: ``def answer(question, model="gpt-4o", max_tokens=500)`` costs what
``gpt-4o`` charges for up to 500 output tokens when it is called as ``answer("Hi")``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from llm_toll._call.plan import NO_DEFAULT, CostArgument
from llm_toll._call.request_bound import CONFIG_KEYS, OUTPUT_LIMIT_KEYS

COST_PARAMETERS = frozenset(("model", *OUTPUT_LIMIT_KEYS, *CONFIG_KEYS))
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_PACKED = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def cost_arguments(func: Callable[..., Any]) -> tuple[CostArgument, ...]:
    """``func``'s parameters named ``model``, an output cap or a Gemini configuration;
    empty when it has none (or no signature can be read)."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return ()
    found: list[CostArgument] = []
    for position, parameter in enumerate(parameters):
        if parameter.name not in COST_PARAMETERS or parameter.kind in _PACKED:
            continue
        index = position if parameter.kind in _POSITIONAL else None
        default = NO_DEFAULT if parameter.default is parameter.empty else parameter.default
        found.append(CostArgument(parameter.name, index, default))
    return tuple(found)
