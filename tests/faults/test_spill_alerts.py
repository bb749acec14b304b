"""Records written late, from the spill journal or from memory, raise the alerts their
writes cross: once per crossing, as the store's threshold marks decide."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import _runtime, track_costs
from llm_toll._budget.journal import SPILL_DIR_ENV, SpillJournal
from llm_toll._budget.records import BudgetSpec, PendingWrite
from llm_toll.store import SQLiteStore
from tests.faults.test_spill import InProcess
from tests.faults.workload import chat
from tests.integration.test_alerts import Received, delivered
from tests.stores.helpers import make_call
from tests.support.alert_receiver import AlertReceiver, fields


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    setup = InProcess(tmp_path / "ledger.db")
    llm_toll.set_store(setup.store)
    llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
    try:
        yield setup
    finally:
        setup.unlock()
        setup.blocker.close()
        llm_toll.set_store(None)
        llm_toll.set_reporter(None)
        setup.store.close()


def budgeted_twice_over(
    in_process: InProcess, thresholds: Received, exceeded: Received
) -> tuple[Callable[[], Any], int]:
    """A function whose budget two calls spend, with the cost of one call."""
    in_process.ask(100)  # recorded at once: what one call costs
    [row] = in_process.store.get_usage_logs("faults")
    cost = int(row["cost_nanos"])

    @track_costs(
        project="spilled-alerts",
        max_budget=2 * cost / 1e9,
        reset="daily",
        on_threshold=thresholds,
        on_exceeded=exceeded,
    )
    def ask() -> dict[str, Any]:
        return chat(100)

    return ask, cost


@pytest.mark.parametrize("kept", ["journal", "memory"])
def test_records_written_late_raise_the_alerts_they_cross(
    in_process: InProcess, kept: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kept == "memory":  # a spill directory that cannot be made: records wait in memory
        not_a_directory = tmp_path / "file"
        not_a_directory.write_text("")
        monkeypatch.setenv(SPILL_DIR_ENV, str(not_a_directory / "spill"))
    thresholds, exceeded = Received(), Received()
    ask, cost = budgeted_twice_over(in_process, thresholds, exceeded)
    in_process.lock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the store refused the writes: said once per cause
        ask()  # 50 %
        ask()  # 80 %, 100 %, exceeded
    assert _runtime.writer().pending == 2
    delivered()
    assert thresholds.alerts == exceeded.alerts == []  # nothing is crossed until written
    in_process.unlock()
    assert _runtime.writer().force_flush()
    delivered()
    spent = [Decimal(cost * n).scaleb(-9) for n in (1, 2, 2)]
    assert [(a.threshold, a.spent) for a in thresholds.alerts] == list(
        zip((50, 80, 100), spent, strict=True)
    )
    assert [(a.kind, a.refused, a.spent) for a in exceeded.alerts] == [
        ("exceeded", False, spent[2])
    ]
    assert all(a.project == "spilled-alerts" for a in thresholds.alerts + exceeded.alerts)
    # The store's marks flipped with the late writes: later calls raise no crossing again.
    assert _runtime.writer().force_flush()
    delivered()
    assert len(thresholds.alerts) == 3 and len(exceeded.alerts) == 1


def test_a_journal_left_by_another_process_posts_to_its_webhook(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "later.db")
    journal = SpillJournal(store.location)
    now = datetime.now(timezone.utc)
    spilled = PendingWrite(
        make_call(600, project="left-behind", at=now), BudgetSpec(1_000, "daily")
    )
    with AlertReceiver() as receiver:
        journal.append([spilled], [receiver.url])  # as a process that exited left it
        llm_toll.set_store(store)
        llm_toll.set_reporter(llm_toll.CostReporter(enabled=False))
        try:
            # This process's first write to the store writes the journal's records first.
            track_costs(project="faults")(chat)(1)
            [body] = receiver.wait_for(1)
            delivered()
        finally:
            llm_toll.set_store(None)
            llm_toll.set_reporter(None)
            store.close()
    figures = fields(body)
    assert (figures["project"], figures["kind"], figures["threshold (%)"]) == (
        "left-behind",
        "threshold",
        "50",
    )
    assert not journal.has_records()
    assert len(receiver.bodies()) == 1
