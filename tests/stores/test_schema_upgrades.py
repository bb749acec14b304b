"""Every backend: databases of earlier schema versions are upgraded, their data kept."""

from __future__ import annotations

from llm_toll._budget.records import BudgetSpec, BudgetState
from tests.stores.conftest import (
    PostgresServer,
    StoreFactory,
)
from tests.stores.helpers import (
    MONDAY,
    T0,
    all_logs,
    keyed,
    make_call,
)

# -- schema upgrades ------------------------------------------------------------------------

V1_ROWS = (
    """INSERT INTO usage_logs (project, model, operation, input_tokens, output_tokens,
                               cost_nanos, created_at)
       VALUES ('proj', 'gpt-4o', 'chat', 10, 5, 500, '2026-03-02T12:00:00+00:00')""",
    """INSERT INTO budget_totals (project, period, spent_nanos, limit_nanos, thresholds_fired,
                                  updated_at)
       VALUES ('proj', 'all', 500, NULL, 0, '2026-03-02T12:00:00+00:00'),
              ('proj', '2026-03-02', 500, 1000, 1, '2026-03-02T12:00:00+00:00')""",
)


def make_v1_database(factory: StoreFactory, version: int = 1) -> None:
    """The database of ``factory`` as llm_toll left it at schema ``version`` (1 to 3), with
    the data of V1_ROWS (written at version 1)."""
    if factory.backend == "sqlite":
        import sqlite3

        from llm_toll.store._sqlite_schema import MIGRATIONS

        statements = tuple(
            statement
            for step, step_statements in MIGRATIONS
            if step <= version
            for statement in (*step_statements, *(V1_ROWS if step == 1 else ()))
        )
        conn = sqlite3.connect(factory.location, isolation_level=None)
        try:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        finally:
            conn.close()
        return
    from llm_toll.store._postgres_schema import MIGRATIONS as PG_MIGRATIONS

    PostgresServer.run(factory.location, "CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step, step_statements in PG_MIGRATIONS:
        if step <= version:
            for statement in (*step_statements, *(V1_ROWS if step == 1 else ())):
                PostgresServer.run(factory.location, statement)
    PostgresServer.run(
        factory.location, "INSERT INTO schema_version (version) VALUES (%s)", (version,)
    )


def test_a_version_2_database_is_upgraded_for_reservations(store_factory: StoreFactory) -> None:
    make_v1_database(store_factory, version=2)
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 500
        assert store.get_reserved("proj", "daily", MONDAY) == 0
        [row] = [r for r in store.get_budget_utilization() if r["period"] == "2026-03-02"]
        assert (row["total_cost_nanos"], row["limit_nanos"], row["thresholds_fired"]) == (
            500,
            1000,
            1,
        )
        # 500 spent: a 600 worst case does not fit, a 500 one does.
        spec = BudgetSpec(1_000, "daily")
        assert (
            store.reserve(
                "proj", budget_key=None, spec=spec, at=MONDAY, amount_nanos=600, ttl_s=60.0
            )
            is None
        )
        held = store.reserve(
            "proj", budget_key=None, spec=spec, at=MONDAY, amount_nanos=500, ttl_s=60.0
        )
        assert held is not None
        state = store.settle_reservation(held, make_call(300))
        assert (state.spent_nanos, state.crossed_thresholds) == (800, (80,))
        assert store.get_reserved("proj", "daily", MONDAY) == 0
    with store_factory() as store:  # opened again: nothing applied twice
        assert store.get_spent("proj", "daily", MONDAY) == 800
        assert len(all_logs(store)) == 2


def test_a_version_3_database_is_upgraded_for_shared_rate_limits(
    store_factory: StoreFactory,
) -> None:
    make_v1_database(store_factory, version=3)
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 500
        assert store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=T0).admitted
        assert not store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=T0 + 1).admitted
        held = store.reserve(
            "proj",
            budget_key=None,
            spec=BudgetSpec(1_000, "daily"),
            at=MONDAY,
            amount_nanos=500,
            ttl_s=60.0,
        )
        assert held is not None
    with store_factory() as store:  # opened again: nothing applied twice, the window kept
        assert not store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=0, now=T0 + 2).admitted
        assert store.get_reserved("proj", "daily", MONDAY) == 500


def test_a_version_1_database_is_upgraded_and_keeps_its_data(
    store_factory: StoreFactory,
) -> None:
    make_v1_database(store_factory)
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 500
        assert store.get_spent("proj", None, MONDAY) == 500
        [log] = all_logs(store)
        assert (log["cost_nanos"], log["budget_key"]) == (500, None)
        rows = store.get_budget_utilization()
        assert [(r["budget_key"], r["period"], r["thresholds_fired"]) for r in rows] == [
            ("", "2026-03-02", 1),
            ("", "all", 0),
        ]
        state = store.record_call(
            keyed(300, "k"), BudgetSpec(1_000, "daily"), BudgetSpec(100, "daily")
        )
        # The project's 50 % had fired before the upgrade: it does not fire again.
        assert (state.spent_nanos, state.crossed_thresholds) == (800, (80,))
        assert state.key_state == BudgetState(300, 100, "2026-03-02", (50, 80, 100), True)
        assert store.get_spent("proj", "daily", MONDAY, budget_key="k") == 300
    # Opened again: the schema is current, nothing is applied twice.
    with store_factory() as store:
        assert store.get_spent("proj", "daily", MONDAY) == 800
        assert len(all_logs(store)) == 2


# == PostgreSQL only ========================================================================
