"""What the dashboard shows, read from the store through its read API and made ready for
JSON: money as strings of integer nano-USD (exact; the page formats them), times in ISO
8601 UTC.

The overview is two grouped reads, each a pass over the range's calls (the cost that
grows with the ledger): the spend per time step by project and model, and per time step by
key. The totals, the three breakdowns and the chart are summed here from their answers,
which stay small however many calls there are (steps times projects and models, steps times
keys). Grouping by project, model and key at once would instead return a row per
combination, thousands on a ledger of many keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final, Literal, get_args

from llm_toll._budget.forecast import forecast_budget
from llm_toll._budget.periods import Reset, period_key, shown_period
from llm_toll.store import BaseStore
from llm_toll.store._totals import PROJECT_KEY

Step = Literal["day", "week", "month"]
Group = Literal["project", "model", "key"]
STEPS: Final[tuple[Step, ...]] = get_args(Step)
GROUPS: Final[tuple[Group, ...]] = get_args(Group)
_RESETS: Final[tuple[Reset | None, ...]] = (None, "daily", "weekly", "monthly")
_COUNTS: Final = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "unpriced_calls",
    "estimated_calls",
)
_MAX_SERIES: Final = 8
"""The chart stacks the dearest names; the others are summed as one series."""
OTHERS: Final = "(others)"


@dataclass(frozen=True, slots=True)
class Range:
    """A time range, ``since`` inclusive, ``until`` exclusive, either open."""

    since: datetime | None = None
    until: datetime | None = None


def overview(store: BaseStore, when: Range, step: Step, group: Group) -> dict[str, Any]:
    """Totals, spend per project / model / key, the spend over time of ``group`` by
    ``step``, and the budgets of the current periods."""
    by_who = store.spend([step, "project", "model"], since=when.since, until=when.until)
    by_key = store.spend([step, "key"], since=when.since, until=when.until)
    totals = _Sums()
    by_name: dict[Group, dict[str | None, _Sums]] = {g: defaultdict(_Sums) for g in GROUPS}
    for row in by_who:
        totals.add(row)
        by_name["project"][row["project"]].add(row)
        by_name["model"][row["model"]].add(row)
    for row in by_key:
        by_name["key"][row["key"]].add(row)
    over_time = by_key if group == "key" else by_who
    series: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in over_time:
        series[row[group]][row[step]] += row["cost_nanos"]
    return {
        "range": {"since": _iso(when.since), "until": _iso(when.until)},
        "step": step,
        "group": group,
        "totals": totals.as_json(),
        "breakdown": {
            name: [
                {"name": value, **sums.as_json()}
                for value, sums in sorted(
                    by_name[name].items(), key=lambda item: (-item[1].cost_nanos, str(item[0]))
                )
            ]
            for name in GROUPS
        },
        "series": _chart(series, _every_step(step, [row[step] for row in over_time])),
        "budgets": budgets(store),
    }


def calls(
    store: BaseStore, when: Range, *, after_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The most recent calls of the range, newest first, with their flags; only those newer
    than ``after_id`` when it is given (the page's live updates)."""
    rows = store.calls(since=when.since, until=when.until, after_id=after_id, limit=limit)
    return [_call(row) for row in rows]


def runs(store: BaseStore, when: Range, *, limit: int = 20) -> dict[str, Any]:
    """The most recent runs that started in the range, newest first, and the calls refused
    in it, counted per project, key, model, reason and minute, the latest first."""
    rows = store.runs(since=when.since, until=when.until, limit=limit)
    refused = store.refusals(since=when.since, until=when.until, limit=limit)
    return {"runs": [_run(row) for row in rows], "refusals": [_refusal(row) for row in refused]}


def budgets(store: BaseStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every budget with a limit, in the period running now (daily, weekly, monthly or for
    all time), with when it runs out at the recent burn rate: those the running totals
    carry, and the limits kept in the store that nothing has spent against yet."""
    now = now or datetime.now(timezone.utc)
    current = {period_key(reset, now): reset for reset in _RESETS}
    shown = []
    seen: set[tuple[str, str | None, Reset | None]] = set()
    for row in store.get_budget_utilization():
        period, limit = row["period"], row["limit_nanos"]
        if limit is None or period not in current:
            continue
        key = None if row["budget_key"] == PROJECT_KEY else row["budget_key"]
        budget = _Budget(row["project"], key, current[period], limit)
        seen.add((budget.project, key, budget.reset))
        shown.append(budget.figures(store, now, int(row["total_cost_nanos"])))
    for stored in store.get_budget_limits():
        if (stored.project, stored.budget_key, stored.reset) in seen:
            continue
        budget = _Budget(stored.project, stored.budget_key, stored.reset, stored.limit_nanos)
        spent = store.get_spent(budget.project, budget.reset, now, budget_key=budget.key)
        shown.append(budget.figures(store, now, spent))
    return shown


@dataclass(frozen=True)
class _Budget:
    project: str
    key: str | None
    reset: Reset | None
    limit_nanos: int

    def figures(self, store: BaseStore, now: datetime, spent: int) -> dict[str, Any]:
        outlook = forecast_budget(
            store,
            self.project,
            limit_nanos=self.limit_nanos,
            reset=self.reset,
            now=now,
            budget_key=self.key,
            spent_nanos=spent,
        )
        seconds = outlook.seconds_left
        return {
            "project": self.project,
            "key": self.key,
            "reset": self.reset or "never",
            "period": shown_period(period_key(self.reset, now)),  # as the CLI shows it
            "limit_nanos": str(self.limit_nanos),
            "spent_nanos": str(spent),
            "utilization": spent / self.limit_nanos if self.limit_nanos else None,
            # Spent in the forecast's window (the last hour), the burn rate's measure.
            "burn_nanos": str(outlook.window_spent_nanos),
            "burn_window_s": outlook.window_s,
            "runs_out": outlook.runs_out,
            "runs_out_at": None
            if seconds is None or not outlook.runs_out
            else _iso(now + timedelta(seconds=seconds)),
        }


class _Sums:
    __slots__ = ("cost_nanos", "counts")

    def __init__(self) -> None:
        self.cost_nanos = 0
        self.counts = dict.fromkeys(_COUNTS, 0)

    def add(self, row: Mapping[str, Any]) -> None:
        self.cost_nanos += row["cost_nanos"] or 0
        counts = self.counts
        for name in _COUNTS:
            counts[name] += row[name] or 0

    def as_json(self) -> dict[str, Any]:
        return {"cost_nanos": str(self.cost_nanos), **self.counts}


def _every_step(step: Step, seen: Iterable[str]) -> list[str]:
    """The steps from the first seen to the last, those without calls included, so that
    the chart's axis keeps time."""
    present = sorted(set(seen))
    if not present:
        return []
    steps, last = [present[0]], present[-1]
    while steps[-1] < last:
        steps.append(_next_step(step, steps[-1]))
    return steps


def _next_step(step: Step, label: str) -> str:
    if step == "day":
        return (date.fromisoformat(label) + timedelta(days=1)).isoformat()
    if step == "week":  # ISO week, 2026-W49
        iso_year, iso_week = label.split("-W")
        monday = date.fromisocalendar(int(iso_year), int(iso_week), 1) + timedelta(days=7)
        iso = monday.isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}"
    year, month = map(int, label.split("-"))
    return f"{year + month // 12}-{month % 12 + 1:02d}"


def _chart(series: Mapping[str | None, Mapping[str, int]], steps: Iterable[str]) -> dict[str, Any]:
    """The stacked series of the chart: one per name, the dearest first, the rest as one."""
    buckets = sorted(set(steps))
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1].values()), str(item[0])))
    shown = ranked[:_MAX_SERIES]
    if len(ranked) > _MAX_SERIES:
        rest: dict[str, int] = defaultdict(int)
        for _, costs in ranked[_MAX_SERIES - 1 :]:
            for bucket, cost in costs.items():
                rest[bucket] += cost
        shown = [*ranked[: _MAX_SERIES - 1], (OTHERS, rest)]
    return {
        "buckets": buckets,
        "series": [
            {"name": name, "cost_nanos": [str(costs.get(bucket, 0)) for bucket in buckets]}
            for name, costs in shown
        ],
    }


def flags(row: Mapping[str, Any]) -> list[str]:
    """What a ledger row says of its figures: ``estimated`` (usage estimated, not reported),
    ``unpriced`` (no price known: recorded at $0), ``partial`` (priced, but some of its
    units had no price, so the cost is part of the bill)."""
    shown = ["estimated"] if row["estimated"] else []
    if not row["price_known"]:
        shown.append("unpriced")
    elif row["unpriced_units"]:
        shown.append("partial")
    return shown


def _call(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": _iso(row["created_at"]),
        "project": row["project"],
        "model": row["model"],
        "provider": row["provider"],
        "key": row["budget_key"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cost_nanos": str(row["cost_nanos"]),
        "cost_source": row["cost_source"],
        "flags": flags(row),
    }


def _run(row: Mapping[str, Any]) -> dict[str, Any]:
    cap = row["max_cost_nanos"]
    return {
        "id": row["id"],
        "parent_id": row["parent_id"],
        "name": row["name"],
        "project": row["project"],
        "key": row["budget_key"],
        "status": row["status"],
        "started_at": _iso(row["started_at"]),
        "duration_s": row["duration_s"],
        "requests": row["requests"],
        "cost_nanos": str(row["cost_nanos"]),
        "max_cost_nanos": None if cap is None else str(cap),
    }


def _refusal(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "minute": _iso(row["minute"]),
        "last_at": _iso(row["last_at"]),
        "project": row["project"],
        "key": row["budget_key"],
        "model": row["model"],
        "reason": row["reason"],
        "count": row["count"],
        "message": row["message"],
        "flags": ["refused"],
    }


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        at = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return at.astimezone(timezone.utc).isoformat()
    return str(value)
