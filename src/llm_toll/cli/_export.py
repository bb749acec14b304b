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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TextIO

from llm_toll._budget.money import nanos_to_text
from llm_toll.cli._parser import CommandFailure
from llm_toll.cli._progress import Bar, progress_bar
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
    with session(reads=True) as store, _opened(args.output) as out:
        total = _count(store, filters) if sys.stderr.isatty() else None
        progress = progress_bar(total, "Exporting")
        try:
            rows = _counted(store.iter_calls(**filters), progress)
            write = _write_jsonl if jsonl else _write_csv
            write(rows, columns, out)
        except BrokenPipeError:
            raise  # the reader went away (`| head`): main ends quietly
        except OSError as exc:
            raise CommandFailure(f"cannot write {args.output or 'stdout'}: {exc}") from exc
        finally:
            progress.close()
    return 0


def _write_csv(rows: Iterable[Row], columns: tuple[str, ...], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(_cells(rows, columns, for_csv=True))


def _write_jsonl(rows: Iterable[Row], columns: tuple[str, ...], out: TextIO) -> None:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for cells in _cells(rows, columns, for_csv=False):
        out.write(dumps(dict(zip(columns, cells, strict=True))))
        out.write("\n")


def _cells(rows: Iterable[Row], columns: tuple[str, ...], *, for_csv: bool) -> Iterator[Any]:
    """The values of ``columns`` of each row, as written: money as exact decimal text, times
    as ISO 8601; for CSV also flags as ``true``/``false`` and JSON columns as JSON text
    (None is an empty CSV cell, JSON's null). Rows are changed in place: they are the
    export's own, and a million of them are better not copied."""
    pick = itemgetter(*columns)
    money = [name for name in columns if name in _MONEY]
    flags = [name for name in columns if name in BOOLEAN_COLUMNS] if for_csv else []
    objects = [name for name in columns if name in JSON_COLUMNS] if for_csv else []
    for row in rows:
        for name in money:
            nanos = row[f"{name}_nanos"]
            row[name] = None if nanos is None else nanos_to_text(nanos)
        for name in flags:
            row[name] = "true" if row[name] else "false"
        for name in objects:
            if row[name] is not None:
                row[name] = json.dumps(row[name], separators=(",", ":"), sort_keys=True)
        at = row["created_at"]
        if isinstance(at, datetime):  # PostgreSQL returns one; SQLite ISO text
            row["created_at"] = at.isoformat()
        yield pick(row)


def _count(store: BaseStore, filters: dict[str, Any]) -> int:
    """How many rows the export will write, for the progress bar."""
    return sum(int(row["calls"]) for row in store.spend((), **filters))


def _counted(rows: Iterable[Row], progress: Bar) -> Iterator[Row]:
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
