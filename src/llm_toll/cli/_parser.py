"""The command line: subcommands and their options, and llm-toll 0.13's flags mapped onto
them."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any, NoReturn

from llm_toll._version import VERSION
from llm_toll.cli import _budget
from llm_toll.store import STORE_URL_ENV


class CommandLineError(Exception):
    """The command line is wrong; reported like argparse's own errors (exit code 2)."""


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


def _utc_time(text: str) -> datetime:
    """A date (its UTC midnight) or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date (YYYY-MM-DD) or ISO 8601 time: {text!r}"
        ) from None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


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

    command(
        "migrate",
        "bring the database's schema up to date now, as the first write would; an llm-toll "
        "0.13 database is copied beside itself, then shared with 0.13 (which keeps working)",
    )

    reprice = command(
        "reprice",
        "price the recorded calls again with the current prices; corrections are kept in "
        "price_corrections and carried into the budget totals",
    )
    reprice.add_argument(
        "--since",
        type=_utc_time,
        metavar="DATE",
        help="only calls made at or after DATE (YYYY-MM-DD, or an ISO 8601 time; UTC)",
    )
    reprice.add_argument("--project", help="only calls of this project")
    reprice.add_argument(
        "--dry-run", action="store_true", help="show the differences, change nothing"
    )
    reprice.add_argument(
        "--reason", default=None, help="why, kept with each correction (default: re-priced)"
    )

    _budget.add_parser(command("budget", "set, list and remove limits kept in the store"), common)

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


def resolve_legacy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
