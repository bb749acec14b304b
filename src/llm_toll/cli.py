"""The ``llm-toll`` command: read the ledger and budgets of a store, reset a budget.

Exit codes: 0 success, 1 the store could not be opened or read, 2 usage error.

The flags of llm-toll 0.13 (``--stats``, ``--reset``, ``--export csv`` with ``--project``,
``--model`` and ``--output``) are still accepted and mapped onto the subcommands.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

from llm_toll._budget.money import nanos_to_decimal, usd_to_nanos
from llm_toll._version import VERSION
from llm_toll.reporter import format_usd
from llm_toll.store import BaseStore, SQLiteStore, StoreError, StoreWarning, create_store

STORE_URL_ENV = "LLM_TOLL_STORE_URL"

Row = dict[str, Any]


class CommandLineError(Exception):
    """The command line is wrong; reported like argparse's own errors (exit code 2)."""


class CommandFailure(Exception):
    """The store could not be opened or read, or the output not written (exit code 1)."""


# -- tables ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _count(value: Any) -> str:
    return f"{int(value or 0):,}"


def _usd(value: Any) -> str:
    return "-" if value is None else format_usd(usd_to_nanos(value), grouping=True)


def _time(value: Any) -> str:
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


def _percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    key: str
    fmt: Callable[[Any], str] = _text
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


def _totals(rows: Sequence[Row], cost_key: str, count_keys: Sequence[str], label: Row) -> Row:
    """A total row: the exact cost sum (in nano-USD, not floats), token and call sums."""
    total: Row = dict(label)
    total[cost_key] = nanos_to_decimal(sum(usd_to_nanos(row[cost_key] or 0) for row in rows))
    for key in count_keys:
        total[key] = sum(int(row[key] or 0) for row in rows)
    return total


_CALLS = Column("Calls", "call_count", _count, right=True)
_INPUT = Column("Input Tokens", "total_input_tokens", _count, right=True)
_OUTPUT = Column("Output Tokens", "total_output_tokens", _count, right=True)
_COST = Column("Total Cost", "total_cost", _usd, right=True)
_SUMMED = ("call_count", "total_input_tokens", "total_output_tokens")


# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: ``fetch`` talks to the store, ``show`` turns its result into text."""

    fetch: Callable[[BaseStore, argparse.Namespace], Any]
    show: Callable[[Any, argparse.Namespace], str]


def _fetch_summary(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    if args.model is not None:
        return store.get_project_summaries_for_model(args.model)
    return store.get_all_project_summaries()


def _show_summary(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Project", "project"), _CALLS, _INPUT, _OUTPUT, _COST]
    if args.model is None:
        columns.append(Column("Last Used (UTC)", "last_used", _time))
    total = _totals(rows, "total_cost", _SUMMED, {"project": "TOTAL"})
    title = f"Usage of model: {args.model}" if args.model else "llm-toll usage by project"
    return f"{title}\n\n{render_table(columns, rows, total)}"


def _fetch_models(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_model_summaries(project=args.project)


def _show_models(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Model", "model"), _CALLS, _INPUT, _OUTPUT, _COST]
    total = _totals(rows, "total_cost", _SUMMED, {"model": "TOTAL"})
    title = f"Usage of project: {args.project}" if args.project else "llm-toll usage by model"
    return f"{title}\n\n{render_table(columns, rows, total)}"


def _fetch_logs(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_usage_logs_filtered(project=args.project, model=args.model, limit=args.limit)


def _show_logs(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [
        Column("Time (UTC)", "created_at", _time),
        Column("Project", "project"),
        Column("Model", "model"),
        Column("Input", "input_tokens", _count, right=True),
        Column("Output", "output_tokens", _count, right=True),
        Column("Cost", "cost", _usd, right=True),
    ]
    return render_table(columns, rows)


def _fetch_budgets(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_budget_utilization()


def _show_budgets(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return "No budgets recorded."
    columns = [
        Column("Project", "project"),
        Column("Period", "period"),
        Column("Spent", "total_cost", _usd, right=True),
        Column("Limit", "limit", _usd, right=True),
        Column("Used", "utilization", _percent, right=True),
        Column("Last Reset (UTC)", "last_reset_at", _time),
        Column("Updated (UTC)", "updated_at", _time),
    ]
    if any(row.get("budget_key") for row in rows):  # per-tenant budgets: show whose
        columns.insert(1, Column("Budget Key", "budget_key", lambda key: key or "-"))
    return render_table(columns, rows)


def _fetch_trends(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_daily_cost_trends(days=args.days)


def _show_trends(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return f"No usage in the last {args.days} days."
    columns = [
        Column("Date", "date"),
        Column("Calls", "call_count", _count, right=True),
        Column("Input Tokens", "daily_input_tokens", _count, right=True),
        Column("Output Tokens", "daily_output_tokens", _count, right=True),
        Column("Cost", "daily_cost", _usd, right=True),
    ]
    summed = ("call_count", "daily_input_tokens", "daily_output_tokens")
    total = _totals(rows, "daily_cost", summed, {"date": "TOTAL"})
    return render_table(columns, rows, total)


def _do_reset(store: BaseStore, args: argparse.Namespace) -> Row:
    previous = store.get_total_cost(args.project)
    if previous:
        store.reset_budget(args.project)
    return {"project": args.project, "previous_cost": previous, "reset": bool(previous)}


def _show_reset(result: Row, args: argparse.Namespace) -> str:
    if not result["reset"]:
        return f"Project '{result['project']}' has no recorded cost; nothing to reset."
    return f"Budget reset for project '{result['project']}' (was {_usd(result['previous_cost'])})."


_EXPORT_FIELDS = ("project", "model", "input_tokens", "output_tokens", "cost", "created_at")


def _fetch_export(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_usage_logs_filtered(project=args.project, model=args.model, limit=0)


def _show_export(rows: list[Row], args: argparse.Namespace) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_EXPORT_FIELDS)
    writer.writerows([row[field] for field in _EXPORT_FIELDS] for row in rows)
    return buffer.getvalue().rstrip("\n")


def _nothing_for(args: argparse.Namespace) -> str:
    filters = [
        f"{name} '{value}'"
        for name in ("project", "model")
        if (value := getattr(args, name, None)) is not None
    ]
    return "No usage data found" + (f" for {' and '.join(filters)}." if filters else ".")


COMMANDS: dict[str, Command] = {
    "summary": Command(_fetch_summary, _show_summary),
    "models": Command(_fetch_models, _show_models),
    "logs": Command(_fetch_logs, _show_logs),
    "budgets": Command(_fetch_budgets, _show_budgets),
    "trends": Command(_fetch_trends, _show_trends),
    "reset": Command(_do_reset, _show_reset),
    "export": Command(_fetch_export, _show_export),
}


# -- arguments ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Raises CommandLineError instead of exiting, so ``main`` returns the exit code."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(f"{self.format_usage()}{self.prog}: error: {message}")


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (all) or more, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _add_store_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """Store and output options, accepted before and after the subcommand.

    On subcommands the default is SUPPRESS so they do not overwrite a value given earlier.
    """
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="PATH",
        default=default,
        help=f"SQLite database file (default: ${STORE_URL_ENV}, $LLM_TOLL_DB, or ~/.llm_toll.db)",
    )
    where.add_argument(
        "--store-url",
        metavar="URL",
        default=default,
        help="store URL, e.g. postgresql://user@host/db",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if default is None else default,
        help="print JSON instead of a table",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llm-toll",
        description="Show what LLM calls cost, per project, model and day, and their budgets.",
        epilog="llm-toll 0.13 flags (--stats, --reset, --export csv, with --project, --model, "
        "--output) are still accepted.",
    )
    parser.add_argument("--version", action="version", version=f"llm-toll {VERSION}")
    _add_store_options(parser, None)
    _add_legacy_flags(parser)

    common = _Parser(add_help=False)
    _add_store_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    summary = command("summary", "calls, tokens and cost per project")
    summary.add_argument("--model", help="only calls to this model")

    models = command("models", "calls, tokens and cost per model")
    models.add_argument("--project", help="only calls of this project")

    logs = command("logs", "the most recent calls, newest first")
    logs.add_argument("--project", help="only calls of this project")
    logs.add_argument("--model", help="only calls to this model")
    logs.add_argument(
        "--limit", type=_non_negative_int, default=50, help="how many (0: all; default 50)"
    )

    command("budgets", "running totals per project and budget period, with limit and use")

    trends = command("trends", "cost, tokens and calls per UTC day")
    trends.add_argument(
        "--days", type=_positive_int, default=30, help="how many days back (default 30)"
    )

    reset = command("reset", "zero the running budget totals of a project (history is kept)")
    reset.add_argument("project", help="project name")

    export = command("export", "every call as CSV (or JSON with --json)")
    export.add_argument("--project", help="only calls of this project")
    export.add_argument("--model", help="only calls to this model")
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    return parser


def _add_legacy_flags(parser: argparse.ArgumentParser) -> None:
    """The 0.13 interface, hidden from --help; see ``_resolve_legacy``."""
    legacy = parser.add_mutually_exclusive_group()
    legacy.add_argument("--stats", action="store_true", help=argparse.SUPPRESS)
    legacy.add_argument("--reset", action="store_true", help=argparse.SUPPRESS)
    legacy.add_argument("--export", choices=["csv"], help=argparse.SUPPRESS)
    legacy.add_argument("--dashboard", action="store_true", help=argparse.SUPPRESS)
    legacy.add_argument("--update-pricing", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", dest="legacy_project", help=argparse.SUPPRESS)
    parser.add_argument("--model", dest="legacy_model", help=argparse.SUPPRESS)
    parser.add_argument("--output", dest="legacy_output", help=argparse.SUPPRESS)


def _resolve_legacy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Turn 0.13 flags into the equivalent subcommand and its options, in place."""
    if args.dashboard:
        parser.error(
            "--dashboard was removed: llm_toll exports its cost metrics over OpenTelemetry, "
            "to be shown by the dashboards of your metrics backend (e.g. Grafana)"
        )
    if args.update_pricing:
        parser.error(
            "--update-pricing was removed: prices come from the genai-prices package; "
            "upgrade it to get new prices"
        )
    legacy = args.stats or args.reset or args.export
    given = [args.legacy_project, args.legacy_model, args.legacy_output]
    if args.command is not None:
        if legacy or any(value is not None for value in given):
            parser.error(
                "the 0.13 flags (--stats, --reset, --export, --project, --model, --output "
                "before the command) cannot be combined with a command"
            )
        return
    project, model = args.legacy_project, args.legacy_model
    if args.stats:
        # 0.13: --model showed the projects using a model, --project the models of a project.
        args.command, args.model, args.project = ("summary", model, None)
        if model is None and project is not None:
            args.command, args.project = "models", project
    elif args.reset:
        if project is None:
            parser.error("--reset requires --project")
        args.command, args.project = "reset", project
    elif args.export:
        args.command, args.project, args.model = "export", project, model
        args.output = args.legacy_output
    else:
        parser.error("a command is required (see llm-toll --help)")


# -- store ----------------------------------------------------------------------------------


def store_target(args: argparse.Namespace) -> str | None:
    """``--store-url``, ``--db``, then ``$LLM_TOLL_STORE_URL``.

    None leaves the choice to the store: ``$LLM_TOLL_DB``, else ``~/.llm_toll.db``.
    """
    for value in (args.store_url, args.db, os.environ.get(STORE_URL_ENV)):
        if value:
            return str(value)
    return None


def open_store(target: str | None) -> BaseStore:
    """The store ``target`` names; a SQLite file must already exist (reading must not create
    an empty one, which would hide a mistyped path)."""
    try:
        store = create_store(target)
    except (ValueError, NotImplementedError) as exc:
        raise CommandFailure(f"cannot open the store {target!r}: {exc}") from exc
    if isinstance(store, SQLiteStore) and not Path(store.db_path).exists():
        store.close()
        raise CommandFailure(f"no database at {store.db_path} (nothing recorded there yet?)")
    return store


def run_command(args: argparse.Namespace) -> Any:
    """Open the store, run the command's store part, and close the store."""
    with open_store(store_target(args)) as store, warnings.catch_warnings():
        # The 0.13 read methods report a failing store with a StoreWarning and an empty
        # answer; an empty table would hide the failure, so here it is the error it is.
        warnings.simplefilter("error", StoreWarning)
        try:
            return COMMANDS[args.command].fetch(store, args)
        except (StoreError, StoreWarning) as exc:
            raise CommandFailure(str(exc)) from exc


def _write(text: str, output: str | None) -> None:
    if output is None:
        print(text)
        return
    try:
        Path(output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandFailure(f"cannot write {output}: {exc.strerror or exc}") from exc


def main(argv: list[str] | None = None) -> int:
    """Run ``llm-toll`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version
            return done.code if isinstance(done.code, int) else 0
        _resolve_legacy(parser, args)
        result = run_command(args)
    except CommandLineError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CommandFailure as exc:
        print(f"llm-toll: error: {exc}", file=sys.stderr)
        return 1
    command = COMMANDS[args.command]
    text = json.dumps(result, indent=2, default=str) if args.json else command.show(result, args)
    try:
        _write(text, getattr(args, "output", None))
    except CommandFailure as exc:
        print(f"llm-toll: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
