"""Budgets as data in the store: the ``budget_limits`` table (schema step 7) on both
backends, limits of several periods in one scope's totals, a database shared with
llm-toll 0.13 that stays writable by 0.13, and limits set with ``llm-toll budget`` binding
a running process (``@track_costs`` around the real openai client, against the loopback
replay server) within its refresh interval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from llm_toll._budget.limits import combine
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec
from llm_toll.cli import main as cli
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import STORE_URL_ENV, BaseStore, SQLiteStore, StoreError, StoreWarning
from llm_toll.store._time import utc_now
from tests.stores.conftest import PostgresServer, StoreFactory, open_store
from tests.stores.helpers import MONDAY, keyed, make_call
from tests.stores.test_v013_sharing import (
    SHARING_NOTICE,
    V013_HISTORY,
    backups,
    digest,
    v013,
    v013_total,
)


def test_limits_are_kept_replaced_and_removed(store: BaseStore) -> None:
    before = utc_now()
    assert store.get_budget_limits() == []
    store.set_budget_limit("proj", 5_000_000_001, reset="daily", set_by="ops@host")
    store.set_budget_limit("proj", 7, budget_key="acme")
    store.set_budget_limit("proj", 9, reset="daily")  # replaces the daily one
    limits = store.get_budget_limits()
    assert [(x.project, x.budget_key, x.reset, x.limit_nanos, x.set_by) for x in limits] == [
        ("proj", None, "daily", 9, None),
        ("proj", "acme", None, 7, None),
    ]
    assert all(before <= x.set_at <= utc_now() for x in limits)
    assert store.remove_budget_limits("proj", period="weekly") == 0
    assert store.remove_budget_limits("proj", budget_key="acme", period="lifetime") == 1
    assert store.remove_budget_limits("proj") == 1
    assert store.get_budget_limits() == []


def test_a_second_store_sees_a_limit_another_set(
    store: BaseStore, store_factory: StoreFactory
) -> None:
    other = store_factory()
    other.set_budget_limit("proj", 2**63 - 1, reset="monthly")
    [limit] = store.get_budget_limits()
    assert (limit.limit_nanos, limit.reset_label) == (2**63 - 1, "monthly")
    with pytest.raises(ValueError, match="limit_nanos"):
        store.set_budget_limit("proj", 2**63)
    with pytest.raises(ValueError, match="reset"):
        store.remove_budget_limits("proj", period="hourly")


def test_each_limit_of_a_scope_counts_in_its_own_period(store: BaseStore) -> None:
    """A code budget (monthly, 100) with stored limits (daily 30, lifetime 1000): every
    call adds to the three totals once; the state reported is the one with least left."""
    budget = combine(BudgetSpec(100, "monthly"), [BudgetSpec(30, "daily"), BudgetSpec(1000)])
    assert budget is not None
    state = store.record_call(make_call(10), budget)
    assert (state.period, state.limit_nanos, state.spent_nanos) == (
        period_key("daily", MONDAY),
        30,
        10,
    )
    # The next day: a new daily period, while the month goes on.
    day2 = MONDAY + timedelta(days=1)
    state = store.record_call(make_call(25, at=day2), budget)
    assert (state.period, state.limit_nanos, state.spent_nanos) == (
        period_key("daily", day2),
        30,
        25,
    )
    spent = [
        store.get_spent("proj", "daily", MONDAY),
        store.get_spent("proj", "daily", day2),
        store.get_spent("proj", "monthly", day2),
        store.get_spent("proj", None, day2),
    ]
    assert spent == [10, 25, 35, 35]  # the lifetime total counts each call once
    # The other totals come back too: the process's budget view learns each of them.
    assert sorted((o.period, o.spent_nanos) for o in state.others) == [("2026-03", 35), ("all", 35)]
    lifetime = [row for row in store.get_budget_utilization() if row["period"] == "all"]
    assert [row["limit_nanos"] for row in lifetime] == [1000]
    # A looser stored limit: the code's is the one with least left, and is reported.
    looser = combine(BudgetSpec(100, "monthly"), [BudgetSpec(1000, "daily")])
    assert looser is not None
    state = store.record_call(make_call(1, at=day2), looser)
    assert (state.period, state.limit_nanos, state.spent_nanos) == ("2026-03", 100, 36)


def test_a_key_limit_counts_only_that_key(store: BaseStore) -> None:
    key_budget = combine(None, [BudgetSpec(50, "weekly")])
    state = store.record_call(keyed(20, "acme"), None, key_budget)
    assert state.key_state is not None
    assert (state.key_state.limit_nanos, state.key_state.spent_nanos) == (50, 20)
    assert store.get_spent("proj", "weekly", MONDAY, budget_key="acme") == 20
    assert store.get_spent("proj", None, MONDAY) == 20


def test_a_v013_file_is_read_unchanged_and_shared_on_the_first_set(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    v013(db, V013_HISTORY)
    before = digest(db)
    with SQLiteStore(db) as store:
        assert store.get_budget_limits() == []
    assert digest(db) == before  # reading never changes a database
    with SQLiteStore(db) as store, pytest.warns(StoreWarning, match=SHARING_NOTICE):
        store.set_budget_limit("chat", 1_000_000_000, reset="daily")
    assert len(backups(db)) == 1
    v013(db, "store.log_usage('chat', 'gpt-4o', 1, 1, 0.5)")  # 0.13 still writes
    assert v013_total(db, "chat") == pytest.approx(0.875)
    with SQLiteStore(db) as store:
        assert [x.limit_nanos for x in store.get_budget_limits()] == [1_000_000_000]


@pytest.mark.postgres
def test_a_v013_postgres_database_has_no_limits_and_refuses_one(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    dsn = postgres_server.create_database()
    try:
        v013(dsn, V013_HISTORY, cwd=tmp_path)
        store = open_store("postgres", dsn)
        try:
            assert store.get_budget_limits() == []
            with pytest.raises(StoreError, match=r"0\.13"):
                store.set_budget_limit("chat", 1)
        finally:
            store.close()
        assert v013_total(dsn, "chat", cwd=tmp_path) == pytest.approx(0.375)
    finally:
        postgres_server.drop_database(dsn)


# -- a running process ------------------------------------------------------------------

WORKER = Path(__file__).resolve().parents[1] / "support" / "budget_worker.py"
REPO = Path(__file__).resolve().parents[2]
REFRESH_S = 0.2  # the worker's LLM_TOLL_BUDGET_REFRESH_S
PICKUP_TIMEOUT_S = 60.0  # generous: a change is due within REFRESH_S
CODE_LIMIT_USD = 0.05


class Worker:
    """The running process: one decorated call per ``call()``."""

    def __init__(self, replay: ReplayServer, url: str, project: str) -> None:
        env = {**os.environ, STORE_URL_ENV: url, "LLM_TOLL_BUDGET_REFRESH_S": str(REFRESH_S)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        argv = [sys.executable, str(WORKER), replay.base_url + "/v1", project, str(CODE_LIMIT_USD)]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the worker exited with {self.process.wait()}"
        return line.strip()

    def call(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("call\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.readline())
        return answer

    def until(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Call until ``done(answer)``: a change in the store reaches the worker at its
        next refresh; the answer last seen is returned for the caller to assert on."""
        deadline = time.monotonic() + PICKUP_TIMEOUT_S
        while True:
            answer = self.call()
            if done(answer) or time.monotonic() >= deadline:
                return answer

    def stop(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def worker(replay: ReplayServer, store_factory: StoreFactory) -> Iterator[tuple[Worker, str]]:
    """A worker process on this test's database, SQLite or PostgreSQL."""
    running = Worker(replay, store_factory.location, "fleet")
    try:
        yield running, store_factory.location
    finally:
        running.stop()


def refused(answer: dict[str, Any]) -> bool:
    return not answer["ok"]


def test_cli_limits_bind_a_running_process(
    worker: tuple[Worker, str], store_factory: StoreFactory
) -> None:
    running, url = worker

    def budget(*args: str) -> int:
        return cli(["budget", *args, "--store-url", url])

    assert running.call() == {"ok": True}  # under the code's limit, no stored one

    # A stored limit stricter than max_budget= refuses the worker's calls.
    assert budget("set", "fleet", "--limit", "0") == 0
    assert running.until(refused) == {"ok": False, "max_budget": 0.0}

    # Raised above the code's limit: calls go through again.
    assert budget("set", "fleet", "--limit", "100", "--reset", "daily") == 0
    assert budget("rm", "fleet", "--reset", "lifetime") == 0
    assert running.until(lambda answer: answer["ok"]) == {"ok": True}

    # Removed: the code's limit is what is left, and it binds once it is spent.
    assert budget("set", "fleet", "--limit", "0") == 0
    assert running.until(refused)["ok"] is False
    assert budget("rm", "fleet") == 0
    assert running.until(lambda answer: answer["ok"]) == {"ok": True}
    last = running.until(refused)
    assert last == {"ok": False, "max_budget": CODE_LIMIT_USD}
    store = store_factory()
    assert store.get_total_cost("fleet") >= CODE_LIMIT_USD
    assert store.get_budget_limits() == []
