"""Plain-text tables of store rows: aligned columns, exact totals, money as the reporter
shows it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from llm_toll._budget.money import nanos_to_decimal, usd_to_nanos
from llm_toll.reporter import format_usd

Row = dict[str, Any]


def text(value: Any) -> str:
    return "-" if value is None else str(value)


def count(value: Any) -> str:
    return f"{int(value or 0):,}"


def usd(value: Any) -> str:
    return "-" if value is None else format_usd(usd_to_nanos(value), grouping=True)


def time(value: Any) -> str:
    """An ISO timestamp from the store as ``YYYY-MM-DD HH:MM:SS`` UTC, for narrow tables."""
    if value is None:
        return "-"
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    key: str
    fmt: Callable[[Any], str] = text
    right: bool = False


def render_table(columns: Sequence[Column], rows: Sequence[Row], total: Row | None = None) -> str:
    """Rows as an aligned text table: header, dashes, one line per row, then the total row.

    The total row fills only the columns whose key it has.
    """
    lines = [[column.header for column in columns]]
    lines += [[column.fmt(row[column.key]) for column in columns] for row in rows]
    if total is not None:
        lines.append(
            [column.fmt(total[column.key]) if column.key in total else "" for column in columns]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]

    def fmt(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if column.right else cell.ljust(width)
            for cell, width, column in zip(cells, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [fmt(lines[0]), "  ".join("-" * width for width in widths)]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)


def totals(rows: Sequence[Row], cost_key: str, count_keys: Sequence[str], label: Row) -> Row:
    """A total row: the exact cost sum (in nano-USD, not floats), token and call sums."""
    total: Row = dict(label)
    total[cost_key] = nanos_to_decimal(sum(usd_to_nanos(row[cost_key] or 0) for row in rows))
    for key in count_keys:
        total[key] = sum(int(row[key] or 0) for row in rows)
    return total
