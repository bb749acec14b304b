"""Tables of store rows: aligned plain text, or coloured by ``rich`` on a terminal; exact
totals; money as the reporter shows it, with a mark on unpriced and estimated figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from llm_toll._budget.money import usd_to_nanos
from llm_toll.reporter import format_usd

Row = dict[str, Any]

UNPRICED = "*"
ESTIMATED = "~"
LEGEND = {
    UNPRICED: "unpriced: no price known for the model, counted as $0",
    ESTIMATED: "estimated: the provider reported no usage, the tokens were counted locally",
}


def text(value: Any) -> str:
    return "-" if value is None else str(value)


def count(value: Any) -> str:
    return f"{int(value or 0):,}"


def usd(value: Any) -> str:
    """A float amount of USD (llm-toll 0.13's reads)."""
    return "-" if value is None else format_usd(usd_to_nanos(value), grouping=True)


def nanos_usd(value: Any, *, signed: bool = False) -> str:
    """An exact amount of nano-USD; ``signed``: with its sign, ``+`` included."""
    if value is None:
        return "-"
    nanos = int(value)
    sign = "-" if nanos < 0 else "+" if signed and nanos else ""
    return sign + format_usd(abs(nanos), grouping=True)


def marks(row: Row) -> str:
    """The marks of a row's cost: of a call (``price_known``, ``estimated``) or of a group
    of calls (``unpriced_calls``, ``estimated_calls``)."""
    unpriced = row.get("unpriced_calls") or row.get("price_known") is False
    estimated = row.get("estimated_calls") or row.get("estimated") is True
    return (UNPRICED if unpriced else "") + (ESTIMATED if estimated else "")


def legend(rows: Sequence[Row]) -> str:
    """What the marks shown in ``rows`` mean, one line each; '' without marks."""
    shown = "".join(marks(row) for row in rows)
    return "\n".join(f"{mark} {meaning}" for mark, meaning in LEGEND.items() if mark in shown)


def time(value: Any) -> str:
    """A time from the store as ``YYYY-MM-DD HH:MM:SS`` UTC, for narrow tables."""
    if value is None:
        return "-"
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Column:
    """A column: ``fmt`` shows the row's ``key``; ``marked``: followed by the row's marks."""

    header: str
    key: str
    fmt: Callable[[Any], str] = text
    right: bool = False
    marked: bool = False

    def show(self, row: Row) -> str:
        if self.key not in row:
            return ""  # a total row fills only the columns it sums
        return self.fmt(row[self.key])


def cost_column(header: str = "Cost") -> Column:
    """Exact ``cost_nanos``, marked when unpriced or estimated."""
    return Column(header, "cost_nanos", nanos_usd, right=True, marked=True)


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Row],
    total: Row | None = None,
    *,
    colour: bool = False,
) -> str:
    """Rows as a table: header, one line per row, then the total row, then the legend of
    the marks shown. ``colour``: drawn by rich, when it is installed."""
    shown = [*rows, *([total] if total else [])]
    note = legend(shown)
    # Marks follow the amount, padded so that amounts stay aligned; no room without marks.
    width = max((len(marks(row)) for row in shown), default=0)

    def line(row: Row) -> list[str]:
        return [
            column.show(row)
            + (marks(row).ljust(width) if column.marked and column.key in row else "")
            for column in columns
        ]

    cells = [line(row) for row in rows]
    total_cells = None if total is None else line(total)
    table = None
    if colour:
        from llm_toll.cli._colour import rich_table

        table = rich_table(columns, cells, total_cells, width)
    if table is None:
        table = _plain_table(columns, cells, total_cells)
    return f"{table}\n\n{note}" if note else table


def _marks_of(column: Column, row: Row, width: int) -> str:
    return marks(row).ljust(width) if column.marked and column.key in row else ""


def _plain_table(columns: Sequence[Column], cells: list[list[str]], total: list[str] | None) -> str:
    lines = [[column.header for column in columns], *cells, *([total] if total else [])]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]

    def fmt(line: list[str]) -> str:
        parts = [
            cell.rjust(width) if column.right else cell.ljust(width)
            for cell, width, column in zip(line, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [fmt(lines[0]), "  ".join("-" * width for width in widths)]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)


def totals(rows: Sequence[Row], count_keys: Sequence[str], label: Row) -> Row:
    """A total row: the exact cost sum (nano-USD), and the sums of ``count_keys``."""
    total: Row = dict(label)
    for key in ("cost_nanos", *count_keys):
        total[key] = sum(int(row[key] or 0) for row in rows)
    return total
