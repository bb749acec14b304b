"""Budgets as data, through the front door: limits set with ``llm-toll budget`` bind a
running process (``@track_costs`` around the real openai client, against the loopback
replay server) within its refresh interval; ``llm_toll.budgets`` in-process; the stricter
of a stored limit and ``max_budget=`` wins, and is the limit spans report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, budgets, track_costs
from llm_toll.cli import main as cli
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import STORE_URL_ENV, SQLiteStore
from tests.support.otel import Telemetry

WORKER = Path(__file__).resolve().parents[1] / "support" / "budget_worker.py"
REPO = Path(__file__).resolve().parents[2]
REFRESH_S = 0.2  # the worker's LLM_TOLL_BUDGET_REFRESH_S
PICKUP_TIMEOUT_S = 60.0  # generous: a change is due within REFRESH_S
CODE_LIMIT_USD = 0.05
MESSAGES = [{"role": "user", "content": "Say hi."}]


class Worker:
    """The running process: one decorated call per ``call()``."""

    def __init__(self, replay: ReplayServer, db: Path, project: str) -> None:
        env = {**os.environ, STORE_URL_ENV: str(db), "LLM_TOLL_BUDGET_REFRESH_S": str(REFRESH_S)}
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
def worker(replay: ReplayServer, tmp_path: Path) -> Iterator[tuple[Worker, Path]]:
    db = tmp_path / "fleet.db"
    running = Worker(replay, db, "fleet")
    try:
        yield running, db
    finally:
        running.stop()


def refused(answer: dict[str, Any]) -> bool:
    return not answer["ok"]


def test_cli_limits_bind_a_running_process(worker: tuple[Worker, Path]) -> None:
    running, db = worker
    assert running.call() == {"ok": True}  # under the code's limit, no stored one

    # A stored limit stricter than max_budget= refuses the worker's calls.
    assert cli(["budget", "set", "fleet", "--limit", "0", "--db", str(db)]) == 0
    assert running.until(refused) == {"ok": False, "max_budget": 0.0}

    # Raised above the code's limit: calls go through again.
    assert (
        cli(["budget", "set", "fleet", "--limit", "100", "--reset", "daily", "--db", str(db)]) == 0
    )
    assert cli(["budget", "rm", "fleet", "--reset", "lifetime", "--db", str(db)]) == 0
    assert running.until(lambda answer: answer["ok"]) == {"ok": True}

    # Removed: the code's limit is what is left, and it binds once it is spent.
    assert cli(["budget", "set", "fleet", "--limit", "0", "--db", str(db)]) == 0
    assert running.until(refused)["ok"] is False
    assert cli(["budget", "rm", "fleet", "--db", str(db)]) == 0
    assert running.until(lambda answer: answer["ok"]) == {"ok": True}
    last = running.until(refused)
    assert last == {"ok": False, "max_budget": CODE_LIMIT_USD}
    with SQLiteStore(db) as store:
        assert store.get_total_cost("fleet") >= CODE_LIMIT_USD
        assert store.get_budget_limits() == []


@pytest.fixture
def ledger(store: SQLiteStore) -> Iterator[SQLiteStore]:
    """The test's store, whose limits this process reads again only when ``set_budget``
    or ``remove_budget`` change them (so a pickup is never a matter of timing here)."""
    before = budgets.refresh_interval()
    budgets.set_refresh_interval(3600.0)
    try:
        yield store
    finally:
        budgets.set_refresh_interval(before)


def test_a_stored_limit_applies_without_max_budget(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="no-code-limit")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    budgets.set_budget("no-code-limit", 0, reset="daily")
    with pytest.raises(BudgetExceededError) as refusal:
        ask()
    assert refusal.value.max_budget == 0.0
    with pytest.raises(BudgetExceededError), llm_toll.run(project="no-code-limit"):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert budgets.remove_budget("no-code-limit") == 1
    ask()  # nothing in code, nothing stored: no limit
    assert len(ledger.get_usage_logs("no-code-limit")) == 2


def test_strict_calls_respect_stored_limits(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="strict-stored", max_budget=10.0, strict=True)
    def ask() -> Any:
        return openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=50
        )

    ask()
    budgets.set_budget("strict-stored", 0)  # lifetime, as the code's: one limit, the smaller
    with pytest.raises(BudgetExceededError):
        ask()
    budgets.set_budget("strict-stored", 0, reset="monthly")  # another period: checked too
    budgets.remove_budget("strict-stored", reset="lifetime")
    with pytest.raises(BudgetExceededError) as refusal:
        ask()
    assert refusal.value.max_budget == 0.0
    budgets.remove_budget("strict-stored")
    ask()
    assert len(ledger.get_usage_logs("strict-stored")) == 2
    assert ledger.get_reserved("strict-stored", None, datetime.now(timezone.utc)) == 0


def test_spans_report_the_binding_limit(
    ledger: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    @track_costs(project="binding", max_budget=5.0, reset="monthly")
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    attributes = telemetry.span().attributes or {}
    assert (attributes["llm_toll.budget.limit"], attributes["llm_toll.budget.period"]) == (
        5.0,
        "monthly",
    )
    telemetry.exporter.clear()
    budgets.set_budget("binding", 1, reset="daily")  # stricter: less money left
    ask()
    attributes = telemetry.span().attributes or {}
    assert (attributes["llm_toll.budget.limit"], attributes["llm_toll.budget.period"]) == (
        1.0,
        "daily",
    )
    # The daily total counts the calls since the daily limit was set; the monthly one all.
    now = datetime.now(timezone.utc)
    monthly = ledger.get_spent("binding", "monthly", now)
    daily = ledger.get_spent("binding", "daily", now)
    assert 0 < daily < monthly
    assert attributes["llm_toll.budget.spent"] == pytest.approx(daily / 1e9)


async def test_async_calls_read_stored_limits_off_the_loop(
    ledger: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    @track_costs(project="async-stored")
    async def ask() -> Any:
        return await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    await ask()
    budgets.set_budget("async-stored", 0, key=None, reset="weekly")
    with pytest.raises(BudgetExceededError) as refusal:
        await ask()
    assert refusal.value.max_budget == 0.0
    budgets.remove_budget("async-stored")
    await ask()
    assert len(ledger.get_usage_logs("async-stored")) == 2
