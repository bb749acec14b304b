"""The cost a response reports itself, read cheaply and checked.

OpenRouter (and OpenAI-compatible gateways like it) adds ``usage.cost``, in USD, to an
OpenAI chat completion. The openai SDK's ``CompletionUsage`` does not declare ``cost``, so
pydantic keeps it in the model's extras: it is read from ``__pydantic_extra__`` (a plain
attribute of every pydantic model, None or a dict), never through pydantic's slow
``__getattr__`` for an undeclared field. LiteLLM hands its callbacks ``response_cost``.

A reported cost that is not a finite, non-negative number (a string, NaN, a negative
amount, more than one call's record may hold) is ignored with a ``UsageWarning``, once per
source: the call is priced by llm_toll instead.
"""

from __future__ import annotations

import math
from typing import Final

from llm_toll._budget.money import MAX_CALL_COST_NANOS, nanos_to_usd, usd_to_nanos
from llm_toll._warnings import shown, warn_once
from llm_toll.exceptions import UsageWarning

COST_FIELD: Final = "cost"


def usage_cost(usage: object) -> int | None:
    """``usage.cost`` of an OpenAI-compatible usage object or dict, in nano-USD; None when
    the response carries none (or an unusable one, with a warning)."""
    if isinstance(usage, dict):
        value = usage.get(COST_FIELD)
    else:
        extra = getattr(usage, "__pydantic_extra__", None)
        if not extra:  # the common case: no extras at all
            return None
        value = extra.get(COST_FIELD)
    if value is None:
        return None
    return checked_cost("usage.cost", value)


def checked_cost(where: str, value: object) -> int | None:
    """``value`` (USD) in nano-USD when it is a finite amount a call may cost; None, with a
    ``UsageWarning`` (once per ``where``), when it is not."""
    nanos = _nanos(value)
    if nanos is None:
        warn_once(
            f"provider-cost:{where}",
            f"llm_toll: the response's {where} is not a cost in USD ({shown(value)}); "
            "the call is priced by llm_toll instead.",
            UsageWarning,
        )
    return nanos


def _nanos(value: object) -> int | None:
    # bool is an int subclass; a string is not an amount, even one that parses as one.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value < 0 or value > nanos_to_usd(MAX_CALL_COST_NANOS):
        return None
    return usd_to_nanos(value)
