"""The command line: subcommands and their options, and llm-toll 0.13's flags mapped onto
them."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any, NoReturn

from llm_toll._budget.periods import stored_period
from llm_toll._version import VERSION
from llm_toll.store import STORE_URL_ENV
from llm_toll.store._dimensions import DIMENSIONS

DEFAULT_DASHBOARD_PORT = 8050  # llm-toll 0.13's


class CommandLineError(Exception):
    """The command line is wrong; reported like argparse's own errors (exit code 2)."""


class CommandFailure(Exception):
    """The store could not be opened or read, or the output not written (exit code 1)."""


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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (a free port) to 65535, got {value}")
    return value


def _utc_time(text: str) -> datetime:
    """A date (its UTC midnight) or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date (YYYY-MM-DD) or ISO 8601 time: {text!r}"
        ) from None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _dimensions(text: str) -> list[str]:
    """A comma list of what ``spend`` groups by."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"cannot group by {text!r}: choose among {', '.join(DIMENSIONS)}"
        )
    return names


def _period(text: str) -> str:
    """A period as ``budgets`` shows it (``lifetime``, ``2026-W49``), as the store keys it."""
    try:
        return stored_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_SINCE_HELP = "only calls made at or after TIME (YYYY-MM-DD, or an ISO 8601 time; UTC)"
_UNTIL_HELP = "only calls made before TIME (YYYY-MM-DD: before that day; UTC)"


def _add_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_utc_time, metavar="TIME", help=_SINCE_HELP)
    parser.add_argument("--until", type=_utc_time, metavar="TIME", help=_UNTIL_HELP)


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
        epilog="llm-toll 0.13 flags (--stats, --reset, --export csv, --update-pricing, with "
        "--project, --model, --output) are still accepted.",
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
    _add_range(summary)
    summary.add_argument("--model", help="only calls to this model")

    models = command("models", "calls, tokens and cost per model")
    _add_range(models)
    models.add_argument("--project", help="only calls of this project")

    spend = command("spend", "calls, tokens and cost grouped by time, project, model, key...")
    _add_range(spend)
    spend.add_argument(
        "--by",
        type=_dimensions,
        action="extend",
        metavar="DIMENSION",
        help=f"group by {', '.join(DIMENSIONS)} (weeks are ISO weeks); repeat it or give a "
        "comma list, e.g. --by week,model (default: day)",
    )
    spend.add_argument("--project", help="only calls of this project")
    spend.add_argument("--model", help="only calls to this model")
    spend.add_argument("--key", help="only calls of this budget key")
    spend.add_argument("--provider", help="only calls to this provider")

    logs = command("logs", "the most recent calls, newest first")
    _add_range(logs)
    logs.add_argument("--project", help="only calls of this project")
    logs.add_argument("--model", help="only calls to this model")
    logs.add_argument(
        "--limit", type=_non_negative_int, default=50, help="how many (0: all; default 50)"
    )
    logs.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="then print new calls as they are recorded, until Ctrl-C",
    )
    logs.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="with --follow: how often to look for new calls (default 1)",
    )

    runs = command("runs", "the most recent runs (decorated calls, run() blocks), newest first")
    _add_range(runs)
    runs.add_argument("--project", help="only runs of this project")
    runs.add_argument(
        "--limit", type=_non_negative_int, default=50, help="how many (0: all; default 50)"
    )

    refusals = command(
        "refusals",
        "calls refused before they were sent, counted per project, key, model, "
        "reason and minute, the latest first",
    )
    _add_range(refusals)
    refusals.add_argument("--project", help="only refusals of this project")
    refusals.add_argument(
        "--limit", type=_non_negative_int, default=50, help="how many rows (0: all; default 50)"
    )

    budgets = command("budgets", "running totals per project and budget period, with limit and use")
    budgets.add_argument("--project", help="only the budgets of this project")

    trends = command("trends", "cost, tokens and calls per UTC day")
    span = trends.add_mutually_exclusive_group()
    span.add_argument(
        "--days", type=_positive_int, default=30, help="how many days back (default 30)"
    )
    span.add_argument("--since", type=_utc_time, metavar="TIME", help=_SINCE_HELP)
    trends.add_argument("--until", type=_utc_time, metavar="TIME", help=_UNTIL_HELP)
    trends.add_argument("--project", help="only calls of this project")
    trends.add_argument("--model", help="only calls to this model")

    reset = command("reset", "zero the running budget totals of a project (history is kept)")
    reset.add_argument("project", help="project name")
    reset.add_argument("--key", help="only this budget key's totals")
    reset.add_argument(
        "--period",
        type=_period,
        help="only this period's totals, as budgets shows it: lifetime, 2026-11-30, "
        "2026-W49, 2026-11",
    )
    reset.add_argument(
        "--yes", "-y", action="store_true", help="do not ask (required when not on a terminal)"
    )

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
    reprice.add_argument("--since", type=_utc_time, metavar="TIME", help=_SINCE_HELP)
    reprice.add_argument("--project", help="only calls of this project")
    reprice.add_argument(
        "--dry-run", action="store_true", help="show the differences, change nothing"
    )
    reprice.add_argument(
        "--reason", default=None, help="why, kept with each correction (default: re-priced)"
    )

    dashboard = command(
        "dashboard", "a local web page of spend, budgets and recent calls, updated live"
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other requires a token)",
    )
    dashboard.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_DASHBOARD_PORT,
        help="port (0: a free one; default 8050)",
    )
    dashboard.add_argument(
        "--token",
        default=None,
        help="the token every request must carry (default: $LLM_TOLL_DASHBOARD_TOKEN; "
        "off loopback a new one is generated and printed)",
    )
    dashboard.add_argument("--open", action="store_true", help="open the page in a browser")

    from llm_toll.cli import _budget  # it raises this module's CommandFailure

    _budget.add_parser(command("budget", "set, list and remove limits kept in the store"), common)

    export = command(
        "export", "every call with every ledger column, oldest first, as CSV or JSON Lines"
    )
    export.add_argument(
        "--format", choices=["csv", "jsonl"], help="csv (default) or jsonl (also: --json)"
    )
    export.add_argument("--project", help="only calls of this project")
    export.add_argument("--model", help="only calls to this model")
    export.add_argument("--key", help="only calls with this budget key")
    _add_range(export)
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")

    prices = command("prices", "the price of a model: rates per unit, tiers, source, version")
    prices.add_argument("model", help="model name, as a call reports it")
    prices.add_argument("--provider", help="provider hint (openai, anthropic, gcp.gemini...)")

    cost = command("cost", "the exact price of one call with these token counts")
    cost.add_argument("--model", required=True, help="model name")
    cost.add_argument("--provider", help="provider hint (openai, anthropic, gcp.gemini...)")
    for flag, dest, help_text in _COST_COUNTS:
        cost.add_argument(
            flag, dest=dest, type=_non_negative_int, default=0, metavar="N", help=help_text
        )
    cost.add_argument(
        "--at",
        type=_utc_time,
        metavar="TIME",
        help="the price in force at TIME (YYYY-MM-DD or ISO 8601, UTC; default now)",
    )

    update = command("update-pricing", "fetch genai-prices' latest price data (in this process)")
    update.add_argument("--url", help="where to fetch it (default: genai-prices' own file)")
    return parser


_COST_COUNTS = (
    ("--in", "input_tokens", "input tokens, cached ones included"),
    ("--out", "output_tokens", "output tokens, reasoning ones included"),
    ("--cached", "cache_read_input_tokens", "of the input: read from the cache"),
    ("--cache-write", "cache_creation_input_tokens", "of the input: written to the cache"),
    ("--reasoning", "reasoning_output_tokens", "of the output: reasoning tokens"),
)


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
    parser.add_argument("--port", dest="legacy_port", type=_port, help=argparse.SUPPRESS)


def resolve_legacy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Turn 0.13 flags into the equivalent subcommand and its options, in place."""
    legacy = args.stats or args.reset or args.export or args.update_pricing or args.dashboard
    given = [args.legacy_project, args.legacy_model, args.legacy_output, args.legacy_port]
    if args.command is not None:
        if legacy or any(value is not None for value in given):
            parser.error(
                "the 0.13 flags (--stats, --reset, --export, --update-pricing, --dashboard, "
                "--project, --model, --output, --port before the command) cannot be combined "
                "with a command"
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
        # 0.13 reset without asking.
        args.command, args.project, args.key, args.period, args.yes = (
            "reset",
            project,
            None,
            None,
            True,
        )
    elif args.dashboard:
        # 0.13 served its dashboard on 127.0.0.1 only, at --port (default 8050).
        args.command, args.host, args.token, args.open = "dashboard", "127.0.0.1", None, False
        args.port = DEFAULT_DASHBOARD_PORT if args.legacy_port is None else args.legacy_port
    elif args.export:
        args.command, args.project, args.model = "export", project, model
        args.output = args.legacy_output
        # 0.13's six columns (its tests read them by position); the money exact.
        args.format, args.key, args.since, args.until = "csv", None, None, None
        args.v013_columns = True
    elif args.update_pricing:
        args.command, args.url = "update-pricing", None
    else:
        parser.error("a command is required (see llm-toll --help)")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot check itself: a range that ends before it starts; the default
    grouping of ``spend``."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since is not None and until is not None and until <= since:
        parser.error(f"--until ({until.isoformat()}) must be after --since ({since.isoformat()})")
    if args.command == "spend":
        if not args.by:
            args.by = ["day"]
        repeated = sorted({name for name in args.by if args.by.count(name) > 1})
        if repeated:
            parser.error(f"--by names {', '.join(repeated)} more than once")
