"""The subcommands: what each reads from the store, and how it shows it."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from llm_toll._budget.periods import shown_period
from llm_toll.cli import _budget
from llm_toll.cli._tables import (
    Column,
    Row,
    cost_column,
    count,
    nanos_usd,
    percent,
    render_table,
    time,
    totals,
)
from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.store import BaseStore, StoreError
from llm_toll.store._time import utc_now

_CALLS = Column("Calls", "calls", count, right=True)
_INPUT = Column("Input Tokens", "input_tokens", count, right=True)
_OUTPUT = Column("Output Tokens", "output_tokens", count, right=True)
_SUMMED = ("calls", "input_tokens", "output_tokens", "unpriced_calls", "estimated_calls")
_DIMENSION_HEADERS = {
    "day": "Day (UTC)",
    "week": "Week",
    "month": "Month",
    "project": "Project",
    "model": "Model",
    "key": "Key",
    "provider": "Provider",
}


# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: ``fetch`` talks to the store, ``show`` turns its result into text.

    ``reads``: a read, whose ``--project`` must name a project the store knows.
    """

    fetch: Callable[[BaseStore, argparse.Namespace], Any]
    show: Callable[[Any, argparse.Namespace], str]
    reads: bool = False
    creates_store: Callable[[argparse.Namespace], bool] | None = None
    """Whether it may write to a SQLite file not yet created (reads never create one)."""


def _spend(store: BaseStore, args: argparse.Namespace, by: list[str], **filters: Any) -> list[Row]:
    # llm-toll 0.13's flags (--stats) come without a range.
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    return store.spend(by, since=since, until=until, **filters)


def _costliest_first(rows: list[Row], name: str) -> list[Row]:
    return sorted(rows, key=lambda row: (-row["cost_nanos"], str(row[name])))


def _table(
    args: argparse.Namespace, columns: list[Column], rows: list[Row], total: Row | None = None
) -> str:
    return render_table(columns, rows, total, colour=getattr(args, "colour", False))


def _fetch_summary(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return _costliest_first(_spend(store, args, ["project"], model=args.model), "project")


def _show_summary(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Project", "project"), _CALLS, _INPUT, _OUTPUT, cost_column("Total Cost")]
    if args.model is None:
        columns.append(Column("Last Used (UTC)", "last_at", time))
    total = totals(rows, _SUMMED, {"project": "TOTAL"})
    # The titles of llm-toll 0.13's --stats.
    title = f"Usage for model: {args.model}" if args.model else "llm-toll Usage Summary"
    return f"{title}{_range(args)}\n\n{_table(args, columns, rows, total)}"


def _fetch_models(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return _costliest_first(_spend(store, args, ["model"], project=args.project), "model")


def _show_models(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Model", "model"), _CALLS, _INPUT, _OUTPUT, cost_column("Total Cost")]
    total = totals(rows, _SUMMED, {"model": "TOTAL"})
    title = f"Usage for project: {args.project}" if args.project else "llm-toll usage by model"
    return f"{title}{_range(args)}\n\n{_table(args, columns, rows, total)}"


def _fetch_spend(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    filters = {name: getattr(args, name) for name in ("project", "model", "key", "provider")}
    return _spend(store, args, args.by, **filters)


def _show_spend(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column(_DIMENSION_HEADERS[name], name) for name in args.by]
    columns += [_CALLS, _INPUT, _OUTPUT, cost_column()]
    total = totals(rows, _SUMMED, {args.by[0]: "TOTAL"})
    title = f"Spend by {', '.join(args.by)}"
    return f"{title}{_range(args)}\n\n{_table(args, columns, rows, total)}"


def _fetch_logs(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.calls(
        since=args.since,
        until=args.until,
        project=args.project,
        model=args.model,
        limit=args.limit or -1,
    )


def _show_logs(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [
        Column("Time (UTC)", "created_at", time),
        Column("Project", "project"),
        Column("Model", "model"),
        Column("Input", "input_tokens", count, right=True),
        Column("Output", "output_tokens", count, right=True),
        cost_column(),
    ]
    if any(row.get("budget_key") for row in rows):
        columns.insert(2, Column("Key", "budget_key"))
    return _table(args, columns, rows)


def _fetch_runs(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.runs(
        since=args.since, until=args.until, project=args.project, limit=args.limit or -1
    )


def _show_runs(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return f"No runs found{_for_project(args)}{_range(args)}."
    columns = [
        Column("Started (UTC)", "started_at", time),
        Column("Project", "project"),
        Column("Run", "name"),
        Column("Duration", "duration_s", lambda s: f"{s:,.2f} s", right=True),
        Column("Requests", "requests", count, right=True),
        Column("Cost", "cost_nanos", nanos_usd, right=True),
        Column("Cap", "max_cost_nanos", nanos_usd, right=True),
        Column("Status", "status"),
    ]
    return _table(args, columns, rows)


def _fetch_refusals(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.refusals(
        since=args.since, until=args.until, project=args.project, limit=args.limit or -1
    )


def _show_refusals(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return f"No refused calls found{_for_project(args)}{_range(args)}."
    columns = [
        Column("Minute (UTC)", "minute", time),
        Column("Project", "project"),
        Column("Model", "model", lambda model: model or "-"),
        Column("Refused By", "reason"),
        Column("Count", "count", count, right=True),
        Column("Last (UTC)", "last_at", time),
        Column("Last Message", "message"),
    ]
    if any(row.get("budget_key") for row in rows):
        columns.insert(2, Column("Key", "budget_key", lambda key: key or "-"))
    return _table(args, columns, rows)


def _for_project(args: argparse.Namespace) -> str:
    return "" if args.project is None else f" for project '{args.project}'"


def _fetch_budgets(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    rows = store.get_budget_utilization()
    for row in rows:
        row["period"] = shown_period(row["period"])
    if args.project is not None:
        rows = [row for row in rows if row["project"] == args.project]
    return rows


def _show_budgets(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return "No budgets recorded."
    columns = [
        Column("Project", "project"),
        Column("Period", "period"),
        Column("Spent", "total_cost_nanos", nanos_usd, right=True),
        Column("Limit", "limit_nanos", nanos_usd, right=True),
        Column("Used", "utilization", percent, right=True),
        Column("Last Reset (UTC)", "last_reset_at", time),
        Column("Updated (UTC)", "updated_at", time),
    ]
    if any(row.get("budget_key") for row in rows):  # per-tenant budgets: show whose
        columns.insert(1, Column("Budget Key", "budget_key", lambda key: key or "-"))
    return _table(args, columns, rows)


def _fetch_trends(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    if args.since is None:
        args.since = utc_now() - timedelta(days=args.days)
    return _spend(store, args, ["day"], project=args.project, model=args.model)


def _show_trends(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Date", "day"), _CALLS, _INPUT, _OUTPUT, cost_column()]
    total = totals(rows, _SUMMED, {"day": "TOTAL"})
    return _table(args, columns, rows, total)


def _range(args: argparse.Namespace) -> str:
    """The date range of a title: `` (since ... until ...)``, or ''."""
    parts = [
        f"{name} {time(value)}"
        for name in ("since", "until")
        if (value := getattr(args, name, None)) is not None
    ]
    return f" ({' '.join(parts)} UTC)" if parts else ""


def _do_migrate(store: BaseStore, args: argparse.Namespace) -> Row:
    upgrade = getattr(store, "upgrade_schema", None)
    if upgrade is None:
        raise StoreError(f"{type(store).__name__} has no schema to upgrade")
    return {"backup": upgrade()}


def _show_migrate(result: Row, args: argparse.Namespace) -> str:
    if result["backup"] is None:
        return "The schema is up to date."
    return (
        "The llm-toll 0.13 database is now shared with llm_toll: 0.13 processes keep "
        f"recording and enforcing the same budgets. A copy from before: {result['backup']}"
    )


def _do_reprice(store: BaseStore, args: argparse.Namespace) -> Row:
    from llm_toll.store.reprice import DEFAULT_REASON, reprice

    with warnings.catch_warnings():
        # The report names the models without a price; the recording-time warning about
        # them ("recorded as $0") would say something untrue of a re-pricing.
        warnings.simplefilter("ignore", PricingMatrixOutdatedWarning)
        report = reprice(
            store,
            since=args.since,
            project=args.project,
            dry_run=args.dry_run,
            reason=args.reason or DEFAULT_REASON,
        )
    return {
        "dry_run": report.dry_run,
        "projects": [
            {
                "project": p.project,
                "rows": p.rows,
                "changed": p.changed,
                "old_cost_nanos": p.old_cost_nanos,
                "new_cost_nanos": p.new_cost_nanos,
                "delta_nanos": p.delta_nanos,
                "unknown": p.unknown,
                "provider": p.provider,
            }
            for p in report.projects
        ],
        "unknown_models": list(report.unknown_models),
    }


def _show_reprice(result: Row, args: argparse.Namespace) -> str:
    rows: list[Row] = result["projects"]
    if not rows:
        return _nothing_for(args)
    columns = [
        Column("Project", "project"),
        Column("Calls", "rows", count, right=True),
        Column("Changed", "changed", count, right=True),
        Column("Old Cost", "old_cost_nanos", nanos_usd, right=True),
        Column("New Cost", "new_cost_nanos", nanos_usd, right=True),
        Column("Difference", "delta_nanos", lambda v: nanos_usd(v, signed=True), right=True),
        Column("Unknown", "unknown", count, right=True),
        Column("Provider", "provider", count, right=True),
    ]
    summed = ("rows", "changed", "old_cost_nanos", "new_cost_nanos", "delta_nanos")
    total: Row = {"project": "TOTAL", "unknown": 0, "provider": 0}
    for key in (*summed, "unknown", "provider"):
        total[key] = sum(int(row[key]) for row in rows)
    lines = [_table(args, columns, rows, total), ""]
    changed = total["changed"]
    if result["dry_run"]:
        lines.append(f"Dry run: {changed:,} call(s) would be corrected; nothing was changed.")
    else:
        lines.append(
            f"{changed:,} call(s) corrected; the old figures are kept in price_corrections, "
            "and the budget totals carry the difference."
        )
    if result["unknown_models"]:
        lines.append(
            "Left as recorded, no price known now for: " + ", ".join(result["unknown_models"])
        )
    if any(row["provider"] for row in rows):
        lines.append("Calls priced by their provider keep the provider's figure.")
    return "\n".join(lines)


def _nothing_for(args: argparse.Namespace) -> str:
    filters = [
        f"{name} '{value}'"
        for name in ("project", "model", "key", "provider")
        if (value := getattr(args, name, None)) is not None
    ]
    found = "No usage data found" + (f" for {' and '.join(filters)}" if filters else "")
    return f"{found}{_range(args)}."


COMMANDS: dict[str, Command] = {
    "summary": Command(_fetch_summary, _show_summary, reads=True),
    "models": Command(_fetch_models, _show_models, reads=True),
    "spend": Command(_fetch_spend, _show_spend, reads=True),
    "logs": Command(_fetch_logs, _show_logs, reads=True),
    "runs": Command(_fetch_runs, _show_runs, reads=True),
    "refusals": Command(_fetch_refusals, _show_refusals, reads=True),
    "budgets": Command(_fetch_budgets, _show_budgets, reads=True),
    "trends": Command(_fetch_trends, _show_trends, reads=True),
    "migrate": Command(_do_migrate, _show_migrate),
    "reprice": Command(_do_reprice, _show_reprice),
    "budget": Command(_budget.run, _budget.show, creates_store=_budget.creates_store),
}
