"""Every backend: ``reprice`` prices the ledger again, keeps an audit trail, and keeps the
budget totals equal to the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from llm_toll._budget.periods import Reset, period_key
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.pricing import PricingRegistry, default_registry
from llm_toll.store import BaseStore
from llm_toll.store.reprice import ProjectReprice, reprice
from llm_toll.usage._base import Usage
from tests.stores.conftest import StoreFactory
from tests.stores.helpers import MONDAY, all_logs, make_call
from tests.stores.test_schema_upgrades import make_v1_database

MODEL = "acme-reprice-model"
TUESDAY = MONDAY + timedelta(days=1)
NEXT_MONTH = MONDAY + timedelta(days=31)
USAGE = Usage(input_tokens=1_000, output_tokens=200)
OLD = (1e-06, 2e-06)  # per input, output token: 1000 in + 200 out = 1_400_000 nano-USD
NEW = (3e-06, 5e-06)  # 3_000_000 + 1_000_000 = 4_000_000 nano-USD
OLD_COST, NEW_COST = 1_400_000, 4_000_000
DAILY = BudgetSpec(10**12, "daily")
MONTHLY = BudgetSpec(10**12, "monthly")


def registry_at(prices: tuple[float, float]) -> PricingRegistry:
    registry = PricingRegistry()
    registry.register_model(MODEL, *prices)
    return registry


def priced(registry: PricingRegistry, *, at: datetime, **fields: Any) -> CallRecord:
    usage = fields.pop("usage", USAGE)
    price = registry.price(MODEL, usage, at=at)
    return make_call(
        price.cost_nanos,
        model=MODEL,
        at=at,
        usage=usage,
        price_source=price.source,
        price_version=price.version,
        **fields,
    )


def query(store: BaseStore, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` on either backend, values as the SQLite store has them."""
    with store._transaction("test", write=False) as tx:  # type: ignore[attr-defined]
        names, rows = tx.query(sql)
    return [dict(zip(names, row, strict=True)) for row in rows]


def snapshot(store: BaseStore) -> tuple[Any, ...]:
    return (
        query(store, "SELECT * FROM usage_logs ORDER BY id"),
        query(store, "SELECT * FROM budget_totals ORDER BY project, budget_key, period"),
        query(store, "SELECT * FROM price_corrections ORDER BY id"),
    )


def reset_of(period: str) -> Reset | None:
    if period == "all":
        return None
    if period.startswith("W"):
        return "weekly"
    return "daily" if len(period) == 10 else "monthly"


def assert_totals_match_the_ledger(store: BaseStore) -> int:
    """Every running total equals the sum of the ledger rows of its scope and period; the
    number of totals compared."""
    ledger: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in query(store, "SELECT project, budget_key, cost_nanos, created_at FROM usage_logs"):
        at = datetime.fromisoformat(row["created_at"])
        for reset in (None, "daily", "weekly", "monthly"):
            period = period_key(reset, at)
            ledger[(row["project"], "", period)] += row["cost_nanos"]
            if row["budget_key"]:
                ledger[(row["project"], row["budget_key"], period)] += row["cost_nanos"]
    totals = query(store, "SELECT project, budget_key, period, spent_nanos FROM budget_totals")
    assert totals
    for total in totals:
        scope = (total["project"], total["budget_key"], total["period"])
        assert total["spent_nanos"] == ledger[scope], scope
    return len(totals)


def record_history(store: BaseStore, registry: PricingRegistry) -> None:
    """Two projects, a budget key, three days over two months, daily and monthly budgets."""
    for at in (MONDAY, MONDAY, TUESDAY, NEXT_MONTH):
        store.record_call(priced(registry, at=at, budget_key="team"), DAILY, MONTHLY)
    store.record_call(priced(registry, at=MONDAY, project="other"), MONTHLY)


# -- re-pricing ------------------------------------------------------------------------------


def test_a_changed_price_corrects_rows_audit_and_totals(store: BaseStore) -> None:
    record_history(store, registry_at(OLD))
    assert_totals_match_the_ledger(store)

    report = reprice(store, registry=registry_at(NEW), reason="new price list")

    delta = NEW_COST - OLD_COST
    assert report.projects == (
        ProjectReprice("other", 1, 1, OLD_COST, NEW_COST),
        ProjectReprice("proj", 4, 4, 4 * OLD_COST, 4 * NEW_COST),
    )
    assert (report.changed, report.delta_nanos, report.dry_run) == (5, 5 * delta, False)
    assert [row["cost_nanos"] for row in query(store, "SELECT * FROM usage_logs")] == [NEW_COST] * 5
    assert store.get_spent("proj", None, MONDAY) == 4 * NEW_COST
    assert store.get_spent("proj", "daily", MONDAY) == 2 * NEW_COST
    assert store.get_spent("proj", "monthly", MONDAY, budget_key="team") == 3 * NEW_COST
    assert store.get_spent("other", "monthly", MONDAY) == NEW_COST
    # 'proj': all and 3 days; its key 'team': all and 2 months; 'other': all and a month.
    assert assert_totals_match_the_ledger(store) == 4 + 3 + 2

    corrections = query(store, "SELECT * FROM price_corrections ORDER BY id")
    ids = [row["id"] for row in query(store, "SELECT id FROM usage_logs ORDER BY id")]
    assert [c["ledger_id"] for c in corrections] == ids
    first = corrections[0]
    assert (first["old_cost_nanos"], first["new_cost_nanos"], first["reason"]) == (
        OLD_COST,
        NEW_COST,
        "new price list",
    )
    assert (first["old_price_source"], first["new_price_source"]) == ("override", "override")
    assert first["corrected_at"] is not None


def test_a_dry_run_reports_and_writes_nothing(store: BaseStore) -> None:
    record_history(store, registry_at(OLD))
    before = snapshot(store)
    report = reprice(store, registry=registry_at(NEW), dry_run=True)
    assert report.dry_run
    assert report.delta_nanos == 5 * (NEW_COST - OLD_COST)
    assert snapshot(store) == before


def test_re_pricing_again_without_a_price_change_changes_nothing(store: BaseStore) -> None:
    record_history(store, registry_at(OLD))
    new = registry_at(NEW)
    assert reprice(store, registry=new).changed == 5
    after = snapshot(store)
    again = reprice(store, registry=new)
    assert (again.changed, again.delta_nanos) == (0, 0)
    assert [p.rows for p in again.projects] == [1, 4]
    assert snapshot(store) == after
    # Unchanged prices from the start: nothing either.
    assert reprice(store, registry=new, batch_size=2).changed == 0
    assert snapshot(store) == after


def test_small_batches_reach_every_row_once(store: BaseStore) -> None:
    record_history(store, registry_at(OLD))
    report = reprice(store, registry=registry_at(NEW), batch_size=2)
    assert report.changed == 5
    assert len(query(store, "SELECT id FROM price_corrections")) == 5
    assert_totals_match_the_ledger(store)


def test_since_and_project_select_the_rows(store: BaseStore) -> None:
    record_history(store, registry_at(OLD))
    report = reprice(store, registry=registry_at(NEW), since=TUESDAY, project="proj")
    assert report.projects == (ProjectReprice("proj", 2, 2, 2 * OLD_COST, 2 * NEW_COST),)
    costs = [r["cost_nanos"] for r in query(store, "SELECT * FROM usage_logs ORDER BY id")]
    assert costs == [OLD_COST, OLD_COST, NEW_COST, NEW_COST, OLD_COST]
    assert_totals_match_the_ledger(store)


def test_unknown_models_and_provider_costs_are_left_as_recorded(store: BaseStore) -> None:
    old = registry_at(OLD)
    store.record_call(make_call(77, model="nobody-prices-this-model", at=MONDAY), DAILY)
    store.record_call(
        priced(old, at=MONDAY, cost_source="provider", local_cost_nanos=OLD_COST), DAILY
    )
    store.record_call(priced(old, at=MONDAY), DAILY)
    with pytest.warns(Warning, match="nobody-prices-this-model"):
        report = reprice(store, registry=registry_at(NEW))
    assert report.projects == (ProjectReprice("proj", 3, 1, OLD_COST, NEW_COST, 1, 1),)
    assert report.unknown_models == ("nobody-prices-this-model",)
    costs = [r["cost_nanos"] for r in query(store, "SELECT * FROM usage_logs ORDER BY id")]
    assert costs == [77, OLD_COST, NEW_COST]
    assert_totals_match_the_ledger(store)


def test_rows_of_the_0_13_api_are_priced_from_their_tokens(store: BaseStore) -> None:
    store.log_usage("legacy", MODEL, 1_000, 200, 0.5)  # 0.13's API: its own cost, no source
    [row] = all_logs(store, "legacy")
    assert (row["price_source"], row["cost_nanos"]) == (None, 500_000_000)
    reprice(store, registry=registry_at(NEW))
    [row] = all_logs(store, "legacy")
    assert (row["price_source"], row["cost_nanos"]) == ("override", NEW_COST)
    [correction] = query(store, "SELECT * FROM price_corrections")
    assert (correction["old_price_source"], correction["old_cost_nanos"]) == (None, 500_000_000)
    assert store.get_total_cost("legacy") == pytest.approx(NEW_COST / 1e9)
    assert_totals_match_the_ledger(store)


def test_a_total_reset_after_a_row_does_not_count_its_correction(store: BaseStore) -> None:
    old = registry_at(OLD)
    store.record_call(priced(old, at=MONDAY))
    store.reset_budget("proj")
    store.record_call(priced(old, at=datetime.now(timezone.utc)))
    reprice(store, registry=registry_at(NEW))
    # Only the call after the reset counts, at its new price.
    assert store.get_spent("proj", None, MONDAY) == NEW_COST


def test_units_and_context_are_priced_again_as_recorded(store: BaseStore) -> None:
    seen: list[tuple[Usage, dict[str, str], str | None]] = []

    class Recording(PricingRegistry):
        def price(self, model: str, usage: Usage, **kwargs: Any) -> Any:
            seen.append((usage, dict(kwargs["context"]), kwargs["provider"]))
            return super().price(model, usage, **kwargs)

    usage = Usage(1_000, 200, units={"input_audio_tokens": 100})
    store.record_call(
        priced(
            registry_at(OLD),
            at=MONDAY,
            usage=usage,
            provider="openai",
            price_context={"service_tier": "flex"},
        )
    )
    recording = Recording()
    recording.register_model(MODEL, *NEW)
    reprice(store, registry=recording)
    [(seen_usage, context, provider)] = seen
    assert dict(seen_usage.units) == {"input_audio_tokens": 100}
    assert (context, provider) == ({"service_tier": "flex"}, "openai")


def test_calls_recorded_during_a_re_pricing_are_neither_lost_nor_adjusted_twice(
    store_factory: StoreFactory,
) -> None:
    old, new = registry_at(OLD), registry_at(NEW)
    store = store_factory()
    days = [MONDAY + timedelta(days=i % 3) for i in range(120)]
    for at in days:
        store.record_call(priced(old, at=at, budget_key="team"), DAILY, MONTHLY)
    writers, per_writer = 3, 40
    start = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def write() -> None:
        other = store_factory()  # a connection of its own, as another process has
        try:
            start.wait()
            for at in days[:per_writer]:
                other.record_call(priced(new, at=at, budget_key="team"), DAILY, MONTHLY)
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    start.wait()
    report = reprice(store, registry=new, batch_size=7)
    for thread in threads:
        thread.join()
    assert errors == []
    rows = query(store, "SELECT cost_nanos FROM usage_logs")
    assert len(rows) == len(days) + writers * per_writer
    assert {row["cost_nanos"] for row in rows} == {NEW_COST}
    assert report.changed == len(days)
    assert len(query(store, "SELECT id FROM price_corrections")) == len(days)
    assert store.get_spent("proj", None, MONDAY) == len(rows) * NEW_COST
    assert_totals_match_the_ledger(store)


# -- migration ---------------------------------------------------------------------------


def test_a_version_5_database_gains_the_price_columns(store_factory: StoreFactory) -> None:
    make_v1_database(store_factory, version=5)
    with store_factory() as store:
        [row] = all_logs(store)
        assert (row["cost_nanos"], row["price_source"], row["cost_source"]) == (
            500,
            None,
            "local",
        )
        assert row["usage_units"] is None and row["local_cost_nanos"] is None
        store.record_call(
            make_call(9, price_context={"processing": "batch"}, price_source="override")
        )
        assert all_logs(store)[0]["price_context"] == {"processing": "batch"}
        assert query(store, "SELECT * FROM price_corrections") == []
    with store_factory() as store:  # opened again: nothing applied twice
        assert len(all_logs(store)) == 2


def test_a_version_5_database_is_re_priced(store_factory: StoreFactory) -> None:
    make_v1_database(store_factory, version=5)  # a gpt-4o row of 500 nano-USD, daily totals
    with store_factory() as store:
        report = reprice(store)
        [project] = report.projects
        assert (project.rows, project.changed, project.old_cost_nanos) == (1, 1, 500)
        [row] = all_logs(store)
        assert row["cost_nanos"] == project.new_cost_nanos != 500
        assert row["price_source"] == "genai-prices"
        assert_totals_match_the_ledger(store)


# -- the command -----------------------------------------------------------------------------


def llm_toll(factory: StoreFactory, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``llm-toll`` console script, on this test's database."""
    where = ["--db" if factory.backend == "sqlite" else "--store-url", factory.location]
    script = Path(sys.executable).with_name("llm-toll")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_TOLL_")}
    return subprocess.run(
        [str(script), *args, *where],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_reprice_command(store_factory: StoreFactory) -> None:
    store = store_factory()
    at = datetime(2025, 6, 2, 12, tzinfo=timezone.utc)
    price = default_registry.price("gpt-4o", USAGE, provider="openai", at=at)
    assert price.known and price.cost_nanos > 1
    stale = make_call(
        1,  # what an older price list said
        model="gpt-4o",
        provider="openai",
        at=at,
        usage=USAGE,
        price_source="genai-prices",
        price_version="0.0.1",
    )
    daily = BudgetSpec(10**12, "daily")
    store.record_call(stale, daily)
    store.record_call(make_call(3, model="mystery-model-x", at=at, price_known=False), daily)
    before = snapshot(store)

    dry = llm_toll(store_factory, "reprice", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 1 call(s) would be corrected" in dry.stdout
    assert "no price known now for: mystery-model-x" in dry.stdout
    assert "Warning" not in dry.stderr  # the report says it; no recording-time warning
    assert f"+${(price.cost_nanos - 1) / 1e9:,.9f}" in dry.stdout
    assert snapshot(store) == before

    done = llm_toll(store_factory, "reprice", "--since", "2025-06-01", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dry_run"] is False
    assert result["projects"] == [
        {
            "project": "proj",
            "rows": 2,
            "changed": 1,
            "old_cost_nanos": 1,
            "new_cost_nanos": price.cost_nanos,
            "delta_nanos": price.cost_nanos - 1,
            "unknown": 1,
            "provider": 0,
        }
    ]
    assert result["unknown_models"] == ["mystery-model-x"]
    [unknown, row] = all_logs(store)
    assert unknown["cost_nanos"] == 3
    assert (row["cost_nanos"], row["price_version"]) == (price.cost_nanos, price.version)
    [correction] = query(store, "SELECT * FROM price_corrections")
    assert (correction["old_price_version"], correction["new_price_version"]) == (
        "0.0.1",
        price.version,
    )
    assert_totals_match_the_ledger(store)

    again = llm_toll(store_factory, "reprice")
    assert again.returncode == 0, again.stderr
    assert "0 call(s) corrected" in again.stdout
    assert len(query(store, "SELECT * FROM price_corrections")) == 1

    later = llm_toll(store_factory, "reprice", "--since", "2030-01-01")
    assert (later.returncode, later.stdout.strip()) == (
        0,
        "No usage data found (since 2030-01-01 00:00:00 UTC).",
    )
    bad = llm_toll(store_factory, "reprice", "--since", "yesterday")
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_reprice_of_a_missing_file_fails(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("llm-toll")
    done = subprocess.run(
        [str(script), "reprice", "--db", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "no database" in done.stderr


def test_reprice_refuses_what_it_cannot_do(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        reprice(store, batch_size=0)
    with pytest.raises(TypeError):
        reprice(object())  # type: ignore[arg-type]
