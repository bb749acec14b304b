"""The JSON routes of llm-toll 0.13's dashboard, kept for scripts written against them:
the 0.13 read methods' rows as they were (money as float USD, beside the exact
``*_nanos`` figures the rows now also carry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from llm_toll._budget.money import nanos_to_usd
from llm_toll.store import BaseStore

Query = dict[str, list[str]]


def _int(query: Query, name: str, default: int) -> int:
    """0.13 fell back to the default for a missing or malformed number."""
    try:
        return int(query[name][0])
    except (KeyError, IndexError, ValueError):
        return default


def _summary(store: BaseStore, query: Query) -> dict[str, Any]:
    projects = store.get_all_project_summaries()
    total_nanos = sum(int(row["total_cost_nanos"] or 0) for row in projects)
    return {
        "total_cost": nanos_to_usd(total_nanos),
        "total_cost_nanos": total_nanos,
        "total_calls": sum(int(row["call_count"]) for row in projects),
        "project_count": len(projects),
        "model_count": len(store.get_model_summaries()),
    }


def _logs(store: BaseStore, query: Query) -> list[dict[str, Any]]:
    project = query.get("project", [None])[0]
    return store.get_usage_logs_filtered(project=project, limit=_int(query, "limit", 1000))


LEGACY_ROUTES: Final[dict[str, Callable[[BaseStore, Query], Any]]] = {
    "/api/summary": _summary,
    "/api/trends": lambda store, query: store.get_daily_cost_trends(days=_int(query, "days", 30)),
    "/api/projects": lambda store, query: store.get_all_project_summaries(),
    "/api/models": lambda store, query: store.get_model_summaries(),
    "/api/budgets": lambda store, query: store.get_budget_utilization(),
    "/api/logs": _logs,
}
