"""The ledger: one row per call, never updated. Its columns are listed here once; the
insert, the row of a call and the 0.13 read order are derived from this list (the
migrations of each backend create the columns)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import CallRecord

COLUMNS: Final = (
    "project",
    "model",
    "provider",
    "operation",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "cost_nanos",
    "price_known",
    "estimated",
    "budget_key",
    "response_id",
    "duration_s",
    "created_at",
)
"""The columns a call writes, in the order of :func:`row`."""

INSERT: Final = (
    f"INSERT INTO usage_logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)

_V013_COLUMNS: Final = (
    "id",
    "project",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "created_at",
)
READ_COLUMNS: Final = _V013_COLUMNS + tuple(c for c in COLUMNS if c not in _V013_COLUMNS)
"""What ``get_usage_logs`` returns: llm-toll 0.13's columns first, in its order, then the
others."""

BOOLEAN_COLUMNS: Final = frozenset({"price_known", "estimated"})


def row(call: CallRecord, time_param: Callable[[datetime], object]) -> tuple[object, ...]:
    """The ledger row of ``call``, in the order of :data:`COLUMNS`; ``time_param`` turns a
    time into what the backend stores."""
    usage = call.usage
    return (
        call.project,
        call.model,
        call.provider,
        call.operation,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_output_tokens,
        call.cost_nanos,
        call.price_known,
        call.estimated,
        call.budget_key,
        call.response_id,
        call.duration_s,
        time_param(call.started_at),
    )


def as_dict(names: Iterable[str], values: Iterable[Any]) -> dict[str, Any]:
    """A row as llm-toll 0.13 returned it, keys in its order, then the exact nano amounts.

    A column named ``<x>_nanos`` is returned both as ``<x>`` (float USD) and as itself.
    """
    result: dict[str, Any] = {}
    exact: dict[str, int | None] = {}
    for name, value in zip(names, values, strict=True):
        if name.endswith("_nanos"):
            result[name.removesuffix("_nanos")] = None if value is None else nanos_to_usd(value)
            exact[name] = value
        else:
            result[name] = bool(value) if name in BOOLEAN_COLUMNS else value
    result.update(exact)
    return result
