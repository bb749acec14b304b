"""``llm-toll export``: every call of the ledger, oldest first, streamed as CSV or JSON Lines.

Rows come from ``store.iter_calls`` (batched reads) and are written one by one, so memory
stays flat however large the ledger. Every ledger column is written; money columns
(``cost``, ``local_cost``) are exact decimal USD (``0.00000016``), in JSON Lines as strings
so no reader turns them into floats. llm-toll 0.13's ``--export csv`` keeps its six columns.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from llm_toll._budget.money import nanos_to_text
from llm_toll.cli._parser import CommandFailure
from llm_toll.cli._progress import Progress
from llm_toll.store import BaseStore
from llm_toll.store._ledger import BOOLEAN_COLUMNS, JSON_COLUMNS, READ_COLUMNS

if TYPE_CHECKING:
    from llm_toll.cli._tools import Session

Row = dict[str, Any]

COLUMNS = tuple(name.removesuffix("_nanos") for name in READ_COLUMNS)
"""The ledger's columns, llm-toll 0.13's first; ``<x>_nanos`` columns as USD ``<x>``."""
V013_COLUMNS = ("project", "model", "input_tokens", "output_tokens", "cost", "created_at")
_MONEY = frozenset(name.removesuffix("_nanos") for name in READ_COLUMNS if name.endswith("_nanos"))


def run(args: argparse.Namespace, session: Session) -> int:
    columns = V013_COLUMNS if getattr(args, "v013_columns", False) else COLUMNS
    jsonl = args.format == "jsonl" or (args.format is None and args.json)
    filters = {
        "since": args.since,
        "until": args.until,
        "project": args.project,
        "model": args.model,
        "key": args.key,
    }
    with session() as store, _opened(args.output) as out:
        progress = Progress(_count(store, filters) if sys.stderr.isatty() else None, "Exporting")
        try:
            rows = _counted(store.iter_calls(**filters), progress)
            write = _write_jsonl if jsonl else _write_csv
            write(rows, columns, out)
        except OSError as exc:
            raise CommandFailure(f"cannot write {args.output or 'stdout'}: {exc}") from exc
        finally:
            progress.close()
    return 0


def _write_csv(rows: Iterable[Row], columns: tuple[str, ...], out: TextIO) -> None:
    cells = [_csv_cell(name) for name in columns]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(row) for cell in cells] for row in rows)


def _write_jsonl(rows: Iterable[Row], columns: tuple[str, ...], out: TextIO) -> None:
    values = [(name, _json_value(name)) for name in columns]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for row in rows:
        out.write(dumps({name: value(row) for name, value in values}))
        out.write("\n")


def _csv_cell(name: str) -> Callable[[Row], object]:
    """How column ``name`` of a row is written in a CSV cell (None is an empty cell)."""
    if name in _MONEY:
        return lambda row: _money(row[f"{name}_nanos"])
    if name in BOOLEAN_COLUMNS:
        return lambda row: "true" if row[name] else "false"
    if name in JSON_COLUMNS:
        return lambda row: _json_text(row[name])
    if name == "created_at":
        return lambda row: _time(row[name])
    return lambda row: row[name]


def _json_value(name: str) -> Callable[[Row], object]:
    """How column ``name`` of a row is written in a JSON Lines object."""
    if name in _MONEY:
        return lambda row: _money(row[f"{name}_nanos"])
    if name == "created_at":
        return lambda row: _time(row[name])
    return lambda row: row[name]


def _money(nanos: int | None) -> str | None:
    return None if nanos is None else nanos_to_text(nanos)


def _json_text(value: object) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _time(value: object) -> object:
    """SQLite returns the ISO text it keeps; PostgreSQL a datetime."""
    return value.isoformat() if isinstance(value, datetime) else value


def _count(store: BaseStore, filters: dict[str, Any]) -> int:
    """How many rows the export will write, for the progress bar."""
    return sum(int(row["calls"]) for row in store.spend((), **filters))


def _counted(rows: Iterable[Row], progress: Progress) -> Iterator[Row]:
    for row in rows:
        yield row
        progress.advance()


@contextmanager
def _opened(output: str | None) -> Iterator[TextIO]:
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        file = open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CommandFailure(f"cannot write {output}: {exc.strerror or exc}") from exc
    with file:
        yield file
