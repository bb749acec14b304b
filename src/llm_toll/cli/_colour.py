"""Tables drawn by ``rich`` (the ``llm-toll[cli]`` extra), for a terminal: bold headers and
totals, amounts in cyan, marks in yellow."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_toll.cli._tables import Column

_AMOUNT_STYLE = "cyan"
_MARK_STYLE = "yellow"


def rich_table(
    columns: Sequence[Column], cells: list[list[str]], total: list[str] | None, marks: int
) -> str | None:
    """The table as text with ANSI colours; None when rich is not installed. The cells of
    a ``marked`` column end with ``marks`` characters of marks."""
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return None

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column.header, justify="right" if column.right else "left")

    def styled(cell: str, column: Column) -> Text:
        if not column.marked or not cell:
            return Text(cell)
        amount, mark = cell[: len(cell) - marks], cell[len(cell) - marks :]
        return Text.assemble((amount, _AMOUNT_STYLE), (mark, _MARK_STYLE))

    for line in cells:
        table.add_row(*(styled(cell, column) for cell, column in zip(line, columns, strict=True)))
    if total is not None:
        table.add_section()
        table.add_row(
            *(styled(cell, column) for cell, column in zip(total, columns, strict=True)),
            style="bold",
        )
    out = io.StringIO()
    columns_wide = max(shutil.get_terminal_size().columns, 80)
    console = Console(file=out, force_terminal=True, color_system="standard", width=columns_wide)
    console.print(table)
    return out.getvalue().rstrip("\n")
