"""The row of an ended run, written to the store by llm_toll's worker thread with the other
runs that ended meanwhile: never on the call path, never on the event loop. A run's
requests name it in their ledger rows by the id it gets here."""

from __future__ import annotations

import itertools
import os
import secrets
import time
from typing import TYPE_CHECKING

from llm_toll._budget.records import RunRecord, RunStatus
from llm_toll._call.batch import Batch
from llm_toll.exceptions import BudgetExceededError, LocalRateLimitError

if TYPE_CHECKING:
    from llm_toll._call.run import Run
    from llm_toll.store import BaseStore

_counter = itertools.count(1)
_process = secrets.token_hex(6)


def new_run_id() -> str:
    """A run id unique across processes and hosts: this process's random prefix and a
    counter (cheaper than a UUID on every run)."""
    return f"{_process}-{next(_counter):x}"


def _new_process() -> None:
    global _process, _counter
    _process, _counter = secrets.token_hex(6), itertools.count(1)


os.register_at_fork(after_in_child=_new_process)


def status_of(error: BaseException | None) -> RunStatus:
    """``refused`` when llm_toll stopped the run: a budget, a run cap or a rate limit
    refused one of its requests, and the refusal left the run's code."""
    if error is None:
        return "ok"
    if isinstance(error, BudgetExceededError | LocalRateLimitError):
        return "refused"
    return "error"


def ended(run: Run, error: BaseException | None) -> None:
    """Queue the row of ``run``, which has just ended with ``error`` (None: it returned)."""
    assert run.id is not None
    parent = run.parent
    _ended.add(
        run.id,
        RunRecord(
            run.id,
            None if parent is None else parent.id,
            run.plan.project,
            run.name,
            run.budget_key,
            status_of(error),
            run.recorded,
            run.cost_nanos,
            run.max_cost_nanos,
            run.started_ns,
            time.time_ns(),
        ),
    )


def _write(store: BaseStore, runs: list[RunRecord]) -> None:
    store.record_runs(runs)


def _first(known: RunRecord, again: RunRecord) -> RunRecord:
    return known  # a run ends once; its row is written once


_ended: Batch[str, RunRecord] = Batch(_write, _first, "record runs")
