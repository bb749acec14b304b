"""The subcommands: what each reads from the store, and how it shows it."""

from __future__ import annotations

import argparse
import csv
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_toll._budget.money import nanos_to_decimal
from llm_toll.cli import _budget
from llm_toll.cli._tables import Column, Row, count, percent, render_table, time, totals, usd
from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.store import BaseStore, StoreError

_CALLS = Column("Calls", "call_count", count, right=True)
_INPUT = Column("Input Tokens", "total_input_tokens", count, right=True)
_OUTPUT = Column("Output Tokens", "total_output_tokens", count, right=True)
_COST = Column("Total Cost", "total_cost", usd, right=True)
_SUMMED = ("call_count", "total_input_tokens", "total_output_tokens")


# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: ``fetch`` talks to the store, ``show`` turns its result into text."""

    fetch: Callable[[BaseStore, argparse.Namespace], Any]
    show: Callable[[Any, argparse.Namespace], str]
    creates_store: Callable[[argparse.Namespace], bool] | None = None
    """Whether it may write to a SQLite file not yet created (reads never create one)."""


def _fetch_summary(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    if args.model is not None:
        return store.get_project_summaries_for_model(args.model)
    return store.get_all_project_summaries()


def _show_summary(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Project", "project"), _CALLS, _INPUT, _OUTPUT, _COST]
    if args.model is None:
        columns.append(Column("Last Used (UTC)", "last_used", time))
    total = totals(rows, "total_cost", _SUMMED, {"project": "TOTAL"})
    # The titles of llm-toll 0.13's --stats.
    title = f"Usage for model: {args.model}" if args.model else "llm-toll Usage Summary"
    return f"{title}\n\n{render_table(columns, rows, total)}"


def _fetch_models(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_model_summaries(project=args.project)


def _show_models(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [Column("Model", "model"), _CALLS, _INPUT, _OUTPUT, _COST]
    total = totals(rows, "total_cost", _SUMMED, {"model": "TOTAL"})
    title = f"Usage for project: {args.project}" if args.project else "llm-toll usage by model"
    return f"{title}\n\n{render_table(columns, rows, total)}"


def _fetch_logs(store: BaseStore, args: argparse.Namespace) -> list[Row]:
    return store.get_usage_logs_filtered(project=args.project, model=args.model, limit=args.limit)


def _show_logs(rows: list[Row], args: argparse.Namespace) -> str:
    if not rows:
        return _nothing_for(args)
    columns = [
        Column("Time (UTC)", "created_at", time),
        Column("Project", "project"),
        Column("Model", "model"),
        Column("Input", "input_tokens", count, right=True),
        Column("Output", "output_tokens", count, right=True),
        Column("Cost", "cost", usd, right=True),
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
        Column("Spent", "total_cost", usd, right=True),
        Column("Limit", "limit", usd, right=True),
        Column("Used", "utilization", percent, right=True),
        Column("Last Reset (UTC)", "last_reset_at", time),
        Column("Updated (UTC)", "updated_at", time),
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
        Column("Calls", "call_count", count, right=True),
        Column("Input Tokens", "daily_input_tokens", count, right=True),
        Column("Output Tokens", "daily_output_tokens", count, right=True),
        Column("Cost", "daily_cost", usd, right=True),
    ]
    summed = ("call_count", "daily_input_tokens", "daily_output_tokens")
    total = totals(rows, "daily_cost", summed, {"date": "TOTAL"})
    return render_table(columns, rows, total)


def _do_reset(store: BaseStore, args: argparse.Namespace) -> Row:
    previous = store.get_total_cost(args.project)
    if previous:
        store.reset_budget(args.project)
    return {"project": args.project, "previous_cost": previous, "reset": bool(previous)}


def _show_reset(result: Row, args: argparse.Namespace) -> str:
    if not result["reset"]:
        return f"Project '{result['project']}' has no recorded cost; nothing to reset."
    return f"Budget reset for project '{result['project']}' (was {usd(result['previous_cost'])})."


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


def _exact_usd(nanos: Any, *, signed: bool = False) -> str:
    """Nano-USD shown exactly: a correction can be smaller than a table's four decimals."""
    amount = nanos_to_decimal(abs(int(nanos)))
    sign = ("-" if int(nanos) < 0 else "+" if signed else "") if nanos else ""
    return f"{sign}${amount:,.9f}"


def _show_reprice(result: Row, args: argparse.Namespace) -> str:
    rows: list[Row] = result["projects"]
    if not rows:
        return _nothing_for(args)
    columns = [
        Column("Project", "project"),
        Column("Calls", "rows", count, right=True),
        Column("Changed", "changed", count, right=True),
        Column("Old Cost", "old_cost_nanos", _exact_usd, right=True),
        Column("New Cost", "new_cost_nanos", _exact_usd, right=True),
        Column("Difference", "delta_nanos", lambda v: _exact_usd(v, signed=True), right=True),
        Column("Unknown", "unknown", count, right=True),
        Column("Provider", "provider", count, right=True),
    ]
    summed = ("rows", "changed", "old_cost_nanos", "new_cost_nanos", "delta_nanos")
    total: Row = {"project": "TOTAL", "unknown": 0, "provider": 0}
    for key in (*summed, "unknown", "provider"):
        total[key] = sum(int(row[key]) for row in rows)
    lines = [render_table(columns, rows, total), ""]
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
    "migrate": Command(_do_migrate, _show_migrate),
    "reprice": Command(_do_reprice, _show_reprice),
    "export": Command(_fetch_export, _show_export),
    "budget": Command(_budget.run, _budget.show, _budget.creates_store),
}
