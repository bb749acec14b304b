"""The ledger: one row per call. Its columns are listed here once; the insert, the row of
a call and the 0.13 read order are derived from this list (the migrations of each backend
create the columns).

A row is never updated, except by a re-pricing (``reprice``), which keeps the figures it
replaced in ``price_corrections``.

The price of a call is kept with what decides it, so that it can be recomputed: the units
beyond the token columns (``usage_units``, a JSON object under genai-prices' usage keys)
and the price context the response reported (``price_context``, a JSON object such as
``{"service_tier": "flex"}``). The context is one JSON column, not a column per key:
genai-prices' context keys are open (service tier, batch processing, and more to come), a
new one must not need a schema change, and ``reprice`` hands the whole object back to the
price lookup as it was recorded. Both are NULL when empty, as in every row llm-toll 0.13
or an earlier llm_toll wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    # Schema step 6: what a price was made of and where it came from.
    "usage_units",
    "price_context",
    "price_source",
    "price_version",
    "unpriced_units",
    "cost_source",
    "local_cost_nanos",
    # Schema step 7: the innermost run the call was made in.
    "run_id",
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
JSON_COLUMNS: Final = frozenset({"usage_units", "price_context", "unpriced_units"})
"""Stored as JSON text (SQLite) or JSONB (PostgreSQL); read back as dicts and lists."""


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
        json_object(usage.units),
        json_object(call.price_context),
        call.price_source,
        call.price_version,
        json.dumps(list(call.unpriced_units)) if call.unpriced_units else None,
        call.cost_source,
        call.local_cost_nanos,
        call.run_id,
    )


def json_object(values: Mapping[str, object]) -> str | None:
    """A mapping as the ledger keeps it: JSON with sorted keys, NULL when empty."""
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":")) if values else None


def from_json(value: object) -> Any:
    """A JSON column as Python: SQLite returns its text, psycopg a JSONB value decoded."""
    return json.loads(value) if isinstance(value, str) else value


def as_dicts(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of one query as llm-toll 0.13 returned them, keys in its order, then the exact
    nano amounts: a column named ``<x>_nanos`` is returned both as ``<x>`` (float USD) and
    as itself. What each column needs is decided once per query, not per row (an export
    reads a million rows)."""
    keys = [name.removesuffix("_nanos") for name in names]
    nanos = [(i, name) for i, name in enumerate(names) if name.endswith("_nanos")]
    booleans = [i for i, name in enumerate(names) if name in BOOLEAN_COLUMNS]
    jsons = [i for i, name in enumerate(names) if name in JSON_COLUMNS]
    result = []
    for row in rows:
        values = list(row)
        for i in booleans:
            values[i] = bool(values[i])
        for i in jsons:
            values[i] = from_json(values[i])
        exact = [(name, values[i]) for i, name in nanos]
        for i, _ in nanos:
            if values[i] is not None:
                values[i] = nanos_to_usd(values[i])
        as_row = dict(zip(keys, values, strict=True))
        as_row.update(exact)
        result.append(as_row)
    return result
