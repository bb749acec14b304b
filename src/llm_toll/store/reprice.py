"""Re-pricing: the calls of a store priced again with the current prices, the difference
kept as an audit trail and carried into the budgets.

``reprice(store)`` reads the ledger in batches of rows, by id, and prices each row again
from what it records (tokens, ``usage_units``, ``price_context``, provider and time) with
``llm_toll.pricing.default_registry`` (or the registry given). Unless ``dry_run``, a row
whose cost changes is corrected in the batch's transaction, which

- writes a ``price_corrections`` row: the ledger row's id, its old and new cost, old and
  new price source and version, when and why;
- updates the row's cost and price columns (``cost_nanos``, ``price_known``,
  ``price_source``, ``price_version``, ``unpriced_units``);
- adds the difference to the running totals that counted the row: its project's (and its
  budget key's, when that key has totals) lifetime total and the day, week and month
  totals of the row's time, where such a total exists and was not reset after the row;
- in a SQLite file shared with llm-toll 0.13, also updates 0.13's ``cost`` of the row and
  0.13's ``budgets`` total, so both libraries keep enforcing one budget.

Rows are left as they are, and counted in the report, when the model has no price now
(``unknown``), or when their cost is the provider's own figure (``cost_source =
'provider'``: that is what was billed). A row whose cost does not change is not touched,
even when the price data's version did: running ``reprice`` again without a price change
writes nothing.

Concurrency: each batch is one write transaction that locks its ledger rows (selected by
id) and then the totals it changes, in the order every write locks them (a project's own
totals before its keys', each lifetime total before its periods'). A call recorded
meanwhile adds its own cost to the totals in its own transaction, and, priced with the
current prices already, is not changed when a later batch reads it. A threshold event
(50/80/100 %) is never fired by a re-pricing.

A PostgreSQL database of llm-toll 0.13, used through 0.13's own tables, is never changed:
``reprice`` refuses it.

One module of about 400 lines: reading a batch, pricing it again and writing its
corrections share one transaction and one row type, and this docstring is its manual.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.periods import LIFETIME, period_key
from llm_toll.pricing import PricingRegistry, default_registry
from llm_toll.store._base import BaseStore
from llm_toll.store._errors import StoreError
from llm_toll.store._ledger import from_json
from llm_toll.store._sql import SQLStore
from llm_toll.store._time import parse_time, utc_now
from llm_toll.store._totals import PROJECT_KEY
from llm_toll.store._transaction import Transaction
from llm_toll.usage._base import NO_CONTEXT, NO_UNITS, Usage

__all__ = ["DEFAULT_REASON", "ProjectReprice", "RepriceReport", "reprice"]

DEFAULT_REASON: Final = "re-priced with the current prices"
DEFAULT_BATCH_SIZE: Final = 500

_ROW_COLUMNS: Final = (
    "id",
    "project",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "usage_units",
    "price_context",
    "cost_nanos",
    "price_source",
    "price_version",
    "cost_source",
    "budget_key",
    "created_at",
)
_PERIODS: Final = (None, "daily", "weekly", "monthly")
"""The periods whose totals may count a row: lifetime, and its day, week and month."""

_INSERT_CORRECTION: Final = """
INSERT INTO price_corrections (ledger_id, project, old_cost_nanos, new_cost_nanos,
    old_price_source, old_price_version, new_price_source, new_price_version,
    corrected_at, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPDATE_ROW: Final = """
UPDATE usage_logs SET cost_nanos = ?, price_known = ?, price_source = ?, price_version = ?,
    unpriced_units = ?
WHERE id = ?
"""
_UPDATE_V013_COST: Final = "UPDATE usage_logs SET cost = ? WHERE id = ?"
_ADD_TO_V013_BUDGET: Final = """
UPDATE budgets SET total_cost = total_cost + ?
WHERE project = ? AND (last_reset_at IS NULL OR last_reset_at < ?)
"""
_ADD_TO_TOTAL: Final = """
UPDATE budget_totals SET spent_nanos = spent_nanos + ?, updated_at = ?
WHERE project = ? AND budget_key = ? AND period = ?
"""


@dataclass(frozen=True, slots=True)
class ProjectReprice:
    """What a re-pricing found (or did) in one project."""

    project: str
    rows: int = 0
    """Rows priced again."""
    changed: int = 0
    """Rows whose cost changed (corrected, unless a dry run)."""
    old_cost_nanos: int = 0
    """The cost of the changed rows before."""
    new_cost_nanos: int = 0
    """The cost of the changed rows with the current prices."""
    unknown: int = 0
    """Rows left as they are: their model has no price now."""
    provider: int = 0
    """Rows left as they are: their cost is the provider's own figure."""

    @property
    def delta_nanos(self) -> int:
        """What the project's spend changes by."""
        return self.new_cost_nanos - self.old_cost_nanos


@dataclass(frozen=True, slots=True)
class RepriceReport:
    """The outcome of ``reprice``, per project (sorted by name)."""

    projects: tuple[ProjectReprice, ...]
    dry_run: bool
    unknown_models: tuple[str, ...] = ()
    """Models of the rows left alone because no price is known for them now."""

    @property
    def changed(self) -> int:
        return sum(project.changed for project in self.projects)

    @property
    def delta_nanos(self) -> int:
        return sum(project.delta_nanos for project in self.projects)


@dataclass(slots=True)
class _Tally:
    rows: int = 0
    changed: int = 0
    old: int = 0
    new: int = 0
    unknown: int = 0
    provider: int = 0


@dataclass(frozen=True, slots=True)
class _Correction:
    ledger_id: int
    project: str
    budget_key: str | None
    created_at: str
    at: datetime
    old_cost: int
    new_cost: int
    old_source: str | None
    old_version: str | None
    new_source: str
    new_version: str | None
    known: bool
    unpriced: str | None

    @property
    def delta(self) -> int:
        return self.new_cost - self.old_cost


def reprice(
    store: BaseStore,
    *,
    since: datetime | None = None,
    project: str | None = None,
    dry_run: bool = False,
    reason: str = DEFAULT_REASON,
    registry: PricingRegistry | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RepriceReport:
    """Price the calls of ``store`` again with the current prices (see the module).

    ``since``: only calls made at or after it; ``project``: only its calls. ``dry_run``:
    report the differences, change nothing. Raises ``StoreError`` when the store cannot be
    read or written, or is a PostgreSQL database of llm-toll 0.13.
    """
    if not isinstance(store, SQLStore):
        raise TypeError(f"reprice needs an SQL store of llm_toll, got {type(store).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not reason or not reason.strip():
        raise ValueError("reason must say why the calls are re-priced")
    if store._on_v013_tables():
        raise StoreError(
            f"llm_toll store {store.location}: could not re-price: it holds llm-toll 0.13's "
            "tables, which llm_toll uses the way 0.13 does and never changes",
            path=store.location,
        )
    prices = default_registry if registry is None else registry
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    unknown_models: set[str] = set()
    last_id = 0
    while True:
        with store._transaction("re-price the ledger", write=not dry_run) as tx:
            batch = _read_batch(
                tx,
                store,
                after_id=last_id,
                since=since,
                project=project,
                size=batch_size,
                dry_run=dry_run,
            )
            for row in batch.rows_read:
                correction = _price_again(row, prices, tallies, unknown_models)
                if correction is not None:
                    batch.corrections.append(correction)
            if not dry_run and batch.corrections:
                _apply(tx, store, batch.corrections, reason)
        if len(batch.rows_read) < batch_size:
            break
        last_id = batch.last_id
    return RepriceReport(
        tuple(
            ProjectReprice(name, t.rows, t.changed, t.old, t.new, t.unknown, t.provider)
            for name, t in sorted(tallies.items())
        ),
        dry_run,
        tuple(sorted(unknown_models)),
    )


@dataclass(slots=True)
class _ReadBatch:
    rows_read: list[dict[str, Any]]
    last_id: int
    corrections: list[_Correction] = field(default_factory=list)


def _read_batch(
    tx: Transaction,
    store: SQLStore,
    *,
    after_id: int,
    since: datetime | None,
    project: str | None,
    size: int,
    dry_run: bool,
) -> _ReadBatch:
    where = ["id > ?"]
    params: list[object] = [after_id]
    if since is not None:
        where.append("created_at >= ?")
        params.append(store._time_param(since))
    if project is not None:
        where.append("project = ?")
        params.append(project)
    params.append(size)
    select = (
        f"SELECT {', '.join(_ROW_COLUMNS)} FROM usage_logs WHERE {' AND '.join(where)} "
        "ORDER BY id LIMIT ?"
    )
    if not dry_run:
        tx.lock(select, params)  # PostgreSQL: no other re-pricing changes them meanwhile
    names, rows = tx.query(select, params)
    read = [dict(zip(names, row, strict=True)) for row in rows]
    return _ReadBatch(read, int(read[-1]["id"]) if read else after_id)


def _price_again(
    row: Mapping[str, Any],
    prices: PricingRegistry,
    tallies: dict[str, _Tally],
    unknown_models: set[str],
) -> _Correction | None:
    tally = tallies[row["project"]]
    tally.rows += 1
    if row["cost_source"] == "provider":
        tally.provider += 1
        return None
    units = from_json(row["usage_units"])
    context = from_json(row["price_context"])
    usage = Usage(
        int(row["input_tokens"]),
        int(row["output_tokens"]),
        int(row["cache_read_input_tokens"] or 0),
        int(row["cache_creation_input_tokens"] or 0),
        int(row["reasoning_output_tokens"] or 0),
        MappingProxyType(dict(units)) if units else NO_UNITS,
    )
    at = parse_time(row["created_at"])
    price = prices.price(
        row["model"],
        usage,
        provider=row["provider"],
        at=at,
        context=MappingProxyType(dict(context)) if context else NO_CONTEXT,
    )
    if not price.known:
        tally.unknown += 1
        unknown_models.add(row["model"])
        return None
    old = int(row["cost_nanos"])
    if price.cost_nanos == old:
        return None
    tally.changed += 1
    tally.old += old
    tally.new += price.cost_nanos
    return _Correction(
        ledger_id=int(row["id"]),
        project=row["project"],
        budget_key=row["budget_key"],
        created_at=str(row["created_at"]),
        at=at,
        old_cost=old,
        new_cost=price.cost_nanos,
        old_source=row["price_source"],
        old_version=row["price_version"],
        new_source=price.source,
        new_version=price.version,
        known=price.known,
        unpriced=_json_list(price.unpriced),
    )


def _json_list(values: Sequence[str]) -> str | None:
    return json.dumps(list(values)) if values else None


def _apply(
    tx: Transaction, store: SQLStore, corrections: Sequence[_Correction], reason: str
) -> None:
    """The corrections of one batch: audit rows, ledger rows, then the running totals."""
    now = store._time_param(utc_now())
    shared = store._ledger_keeps_v013_cost()
    for c in corrections:
        tx.run(
            _INSERT_CORRECTION,
            (
                c.ledger_id,
                c.project,
                c.old_cost,
                c.new_cost,
                c.old_source,
                c.old_version,
                c.new_source,
                c.new_version,
                now,
                reason,
            ),
        )
        tx.run(
            _UPDATE_ROW,
            (c.new_cost, c.known, c.new_source, c.new_version, c.unpriced, c.ledger_id),
        )
        if shared:  # 0.13's cost of the row, and 0.13's lifetime total that counted it
            tx.run(_UPDATE_V013_COST, (nanos_to_usd(c.new_cost), c.ledger_id))
            tx.run(
                _ADD_TO_V013_BUDGET,
                (nanos_to_usd(c.new_cost) - nanos_to_usd(c.old_cost), c.project, c.created_at),
            )
    for total, delta in _total_deltas(tx, corrections):
        if delta:
            tx.run(_ADD_TO_TOTAL, (delta, now, total.project, total.key, total.period))


class _Total(NamedTuple):
    """A running total; sorts in the order every write locks them (a scope's lifetime total
    before its periods')."""

    project: str
    key: str
    periodic: bool
    period: str


def _total_deltas(tx: Transaction, corrections: Sequence[_Correction]) -> list[tuple[_Total, int]]:
    """What to add to each running total that counted a corrected row, in lock order.

    A total counted a row when it exists for the row's period and was not reset after the
    row's time (a reset starts the total again from 0)."""
    wanted: dict[_Total, list[_Correction]] = defaultdict(list)
    for c in corrections:
        keys = [PROJECT_KEY] if not c.budget_key else [PROJECT_KEY, c.budget_key]
        for key in keys:
            for reset in _PERIODS:
                period = period_key(reset, c.at)
                wanted[_Total(c.project, key, period != LIFETIME, period)].append(c)
    deltas: list[tuple[_Total, int]] = []
    scopes = sorted({(total.project, total.key) for total in wanted})
    for project, key in scopes:
        mine = sorted(t for t in wanted if (t.project, t.key) == (project, key))
        periods = [total.period for total in mine]
        marks = ", ".join("?" * len(periods))
        select = (
            "SELECT period, last_reset_at FROM budget_totals "
            f"WHERE project = ? AND budget_key = ? AND period IN ({marks}) "
            "ORDER BY period <> 'all', period"
        )
        params = (project, key, *periods)
        tx.lock(select, params)
        _, rows = tx.query(select, params)
        last_reset = {period: reset_at for period, reset_at in rows}
        for total in mine:
            period = total.period
            if period not in last_reset:
                continue  # no budget of that period: no total counted the row
            reset_at = last_reset[period]
            delta = sum(
                c.delta for c in wanted[total] if reset_at is None or c.at > parse_time(reset_at)
            )
            deltas.append((total, delta))
    return deltas
