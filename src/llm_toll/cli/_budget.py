"""``llm-toll budget set | list | rm``: the limits kept in the store (``llm_toll.budgets``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from llm_toll._budget.periods import LIFETIME_SHOWN as LIFETIME_RESET
from llm_toll.cli._parser import CommandFailure

if TYPE_CHECKING:  # the parser is built for --help too: the rest is imported when run
    from decimal import Decimal

    from llm_toll._budget.limits import StoredLimit
    from llm_toll.cli._tables import Row
    from llm_toll.store import BaseStore

PERIODS = ("daily", "weekly", "monthly", LIFETIME_RESET)


def add_parser(budget: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The ``budget`` command's own subcommands; ``common``: the store options."""
    actions = budget.add_subparsers(dest="budget_action", metavar="ACTION", required=True)
    # Not read from llm_toll.budgets here: --help stays free of the call path's imports.
    pickup = "running processes apply it within LLM_TOLL_BUDGET_REFRESH_S (default 5) s"
    set_ = actions.add_parser(
        "set",
        parents=[common],
        help="keep a limit for a project (or one of its budget keys) in the store",
        description=f"Keep a limit for a project (or one of its budget keys); {pickup}. "
        "It applies on top of max_budget= in code: each limit over its own period, the "
        "stricter wins.",
    )
    set_.add_argument("project", help="project name")
    set_.add_argument("--limit", required=True, type=_usd, metavar="USD", help="the limit in USD")
    set_.add_argument(
        "--reset",
        dest="budget_reset",
        choices=PERIODS,
        default=LIFETIME_RESET,
        help="its period (default: lifetime)",
    )
    set_.add_argument("--key", help="the budget key (a tenant) it limits, not the project")
    set_.add_argument("--by", dest="set_by", help="who sets it (default: user@host)")
    actions.add_parser(
        "list", parents=[common], help="the limits kept in the store", description=pickup
    ).add_argument("project", nargs="?", help="only this project's")
    rm = actions.add_parser(
        "rm",
        parents=[common],
        help="remove limits kept in the store; calls fall back to the limits in code",
        description=f"Remove limits kept in the store; {pickup}.",
    )
    rm.add_argument("project", help="project name")
    rm.add_argument("--key", help="the budget key's limits, not the project's")
    rm.add_argument(
        "--reset", dest="budget_reset", choices=PERIODS, help="only the limit over this period"
    )


def creates_store(args: argparse.Namespace) -> bool:
    """``set`` may create the SQLite file it writes to; ``list`` and ``rm`` read it first."""
    return bool(args.budget_action == "set")


def run(store: BaseStore, args: argparse.Namespace) -> Any:
    from llm_toll import budgets  # the call path's imports, for this command only

    action = args.budget_action
    if action == "set":
        limit = budgets.set_budget(
            args.project,
            args.limit,
            reset=args.budget_reset,
            key=args.key,
            store=store,
            set_by=args.set_by,
        )
        return _row(limit)
    if action == "list":
        return [_row(limit) for limit in budgets.list_budgets(args.project, store=store)]
    removed = budgets.remove_budget(
        args.project, key=args.key, reset=args.budget_reset, store=store
    )
    if not removed:
        period = f" over the period {args.budget_reset}" if args.budget_reset else ""
        raise CommandFailure(f"no limit is kept for {_scope(args.project, args.key)}{period}")
    return {
        "project": args.project,
        "key": args.key,
        "reset": args.budget_reset,
        "removed": removed,
    }


def show(result: Any, args: argparse.Namespace) -> str:
    from llm_toll import budgets
    from llm_toll.cli._tables import Column, nanos_usd, render_table, time

    action = args.budget_action
    if action == "set":
        return (
            f"Budget of {_scope(result['project'], result['key'])}: "
            f"${result['limit']} {result['reset']}, set by {result['set_by'] or '-'}. "
            f"Running processes apply it within {budgets.refresh_interval():g} s."
        )
    if action == "list":
        if not result:
            return "No budget limits are kept in the store."
        columns = [
            Column("Project", "project"),
            Column("Key", "key"),
            Column("Reset", "reset"),
            Column("Limit", "limit_nanos", nanos_usd, right=True),
            Column("Set by", "set_by"),
            Column("Set at (UTC)", "set_at", time),
        ]
        return render_table(columns, result, colour=getattr(args, "colour", False))
    count = result["removed"]
    return (
        f"Removed {count} limit{'s' if count != 1 else ''} of "
        f"{_scope(result['project'], result['key'])}; calls fall back to the limits in code."
    )


def _row(limit: StoredLimit) -> Row:
    return {
        "project": limit.project,
        "key": limit.budget_key,
        "reset": limit.reset_label,
        "limit": format(limit.limit.normalize(), "f"),  # exact, no trailing zeros
        "limit_nanos": limit.limit_nanos,
        "set_by": limit.set_by,
        "set_at": limit.set_at.isoformat(),
    }


def _scope(project: str, key: str | None) -> str:
    return f"project '{project}'" + (f", key '{key}'" if key else "")


def _usd(text: str) -> Decimal:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount of USD: {text!r}") from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative amount of USD, got {text!r}")
    return amount
