"""Budget alerts through the front door: ``@track_costs`` and ``llm_toll.run`` with the real
openai client against the loopback replay server, callbacks in the alert thread, and a
webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, track_costs
from llm_toll._budget.periods import period_key
from llm_toll._worker import worker
from llm_toll.alerts import WEBHOOK_ENV, Alert, _dispatch
from llm_toll.exceptions import TelemetryWarning
from llm_toll.store import SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES
from tests.support.alert_receiver import AlertReceiver, fields

WAIT_S = 60.0  # a bound for a hung test, not a measured limit


class Received:
    """Alerts a callback received, with the name of the thread each came in."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.threads: set[str] = set()

    def __call__(self, alert: Alert) -> None:
        self.threads.add(threading.current_thread().name)
        self.alerts.append(alert)


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    with AlertReceiver() as server:
        try:
            yield server
        finally:
            delivered()  # nothing left to post once it is gone


def delivered() -> None:
    """Wait until the alert thread has delivered everything queued so far, the alerts of
    async calls' work still in llm_toll's worker thread included."""
    assert worker.drain(WAIT_S)
    assert _dispatch.dispatcher.flush(WAIT_S)


def one_call_nanos(store: SQLiteStore, ask: Callable[[], Any]) -> int:
    """What one replayed request costs, as recorded."""
    track_costs(project="probe")(ask)()
    [row] = store.get_usage_logs("probe")
    return int(row["cost_nanos"])


def test_callbacks_fire_once_per_crossing_in_the_alert_thread(
    store: SQLiteStore, openai_client: Any
) -> None:
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    cost = one_call_nanos(store, ask)
    limit = cost * 5 // 2  # the 2nd call crosses 50 and 80 %, the 3rd 100 %
    thresholds, exceeded = Received(), Received()
    budgeted = track_costs(
        project="crossing",
        max_budget=limit / 1e9,
        reset="daily",
        on_threshold=thresholds,
        on_exceeded=exceeded,
    )(ask)
    for _ in range(3):
        budgeted()
    for _ in range(3):  # refused: one alert for the period, not one per refusal
        with pytest.raises(BudgetExceededError):
            budgeted()
    delivered()
    spent = [Decimal(cost * n).scaleb(-9) for n in (2, 2, 3)]
    assert [(a.kind, a.threshold, a.spent) for a in thresholds.alerts] == [
        ("threshold", 50, spent[0]),
        ("threshold", 80, spent[1]),
        ("threshold", 100, spent[2]),
    ]
    assert [(a.kind, a.refused, a.spent) for a in exceeded.alerts] == [
        ("exceeded", False, spent[2]),
        ("exceeded", True, spent[2]),
    ]
    period = period_key("daily", datetime.now(timezone.utc))
    for alert in thresholds.alerts + exceeded.alerts:
        assert (alert.project, alert.budget_key, alert.period) == ("crossing", None, period)
        assert alert.limit == Decimal(limit).scaleb(-9)
    assert thresholds.threads == exceeded.threads == {"llm_toll-alerts"}


def test_a_reset_budget_alerts_again(store: SQLiteStore, openai_client: Any) -> None:
    seen = Received()

    @track_costs(project="reset-alerts", max_budget=1e-9, on_threshold=seen)
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()
    store.reset_budget("reset-alerts")  # the period's marks are cleared with its total
    llm_toll.set_store(store)  # and this process's view of the total forgotten
    ask()
    delivered()
    assert [a.threshold for a in seen.alerts] == [50, 80, 100] * 2


async def test_async_callbacks_never_run_on_the_event_loop(
    store: SQLiteStore, async_openai_client: Any
) -> None:
    loop_thread = threading.current_thread().name
    seen = Received()

    @track_costs(project="async-alerts", max_budget=1e-9, on_exceeded=seen)
    async def ask() -> Any:
        return await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    await ask()
    with pytest.raises(BudgetExceededError):
        await ask()
    await asyncio.to_thread(delivered)
    assert [a.refused for a in seen.alerts] == [False, True]
    assert loop_thread not in seen.threads


def test_a_run_block_takes_the_alert_options(store: SQLiteStore, openai_client: Any) -> None:
    seen = Received()
    with llm_toll.run("run-alerts", max_budget=1e-9, on_exceeded=seen):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    delivered()
    [alert] = seen.alerts
    assert (alert.project, alert.kind, alert.refused) == ("run-alerts", "exceeded", False)


def test_a_key_budget_alerts_with_its_key(store: SQLiteStore, openai_client: Any) -> None:
    seen = Received()

    @track_costs(
        project="keyed",
        budget_key=lambda tenant: tenant,
        key_budget=1e-9,
        on_exceeded=seen,
    )
    def ask(tenant: str) -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask("acme")
    ask("globex")
    delivered()
    assert sorted(str(a.budget_key) for a in seen.alerts) == ["acme", "globex"]


def test_the_webhook_gets_slack_json(
    store: SQLiteStore, openai_client: Any, receiver: AlertReceiver
) -> None:
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    cost = one_call_nanos(store, ask)
    budgeted = track_costs(
        project="hooked", max_budget=cost * 2 / 1e9, reset="monthly", alert_webhook=receiver.url
    )(ask)
    budgeted()  # 50 %
    budgeted()  # 80 %, then 100 % and exceeded: one message for those two
    with pytest.raises(BudgetExceededError):
        budgeted()
    bodies = receiver.wait_for(4)
    delivered()
    assert len(receiver.bodies()) == 4
    figures = [fields(body) for body in bodies]
    assert [(f["kind"], f["threshold (%)"]) for f in figures] == [
        ("threshold", "50"),
        ("threshold", "80"),
        ("exceeded", "100"),
        ("refused", "100"),
    ]
    assert figures[0]["spent (USD)"] == str(Decimal(cost).scaleb(-9))
    assert figures[2]["limit (USD)"] == str(Decimal(cost * 2).scaleb(-9))
    period = period_key("monthly", datetime.now(timezone.utc))
    assert all(f["project"] == "hooked" and f["period"] == period for f in figures)
    assert "budget key" not in figures[0]
    assert all(body["text"].startswith("llm_toll: project 'hooked'") for body in bodies)


def test_the_environment_names_a_webhook_for_every_budget(
    store: SQLiteStore,
    openai_client: Any,
    receiver: AlertReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @track_costs(project="from-env", max_budget=1e-9)
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    monkeypatch.setenv(WEBHOOK_ENV, receiver.url)  # after decorating: read at each alert
    ask()  # 50, 80 %, then exceeded
    bodies = receiver.wait_for(3)
    assert [fields(body)["project"] for body in bodies] == ["from-env"] * 3


def test_a_webhook_answering_500_is_tried_again(
    store: SQLiteStore, openai_client: Any, receiver: AlertReceiver
) -> None:
    receiver.answer_next(500)
    receiver.answer_next(429, {"Retry-After": "0"})

    @track_costs(project="retried", max_budget=1e-9, alert_webhook=receiver.url)
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    ask()  # 50, 80 %, then exceeded: the first is answered 500, then 429, then taken
    bodies = receiver.wait_for(3)
    delivered()
    assert receiver.attempts == 5
    assert [fields(body)["threshold (%)"] for body in bodies] == ["50", "80", "100"]


def test_a_webhook_refusing_the_message_is_not_tried_again(
    store: SQLiteStore, openai_client: Any, receiver: AlertReceiver
) -> None:
    receiver.answer_next(400)

    @track_costs(project="rejected", max_budget=1e-9, alert_webhook=receiver.url)
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        ask()  # 50 % (answered 400: dropped), 80 %, exceeded
        delivered()
    assert receiver.attempts == 3
    assert [fields(body)["threshold (%)"] for body in receiver.bodies()] == ["80", "100"]
    [dropped] = [str(w.message) for w in given if "HTTP 400" in str(w.message)]
    assert "dropped" in dropped
    assert "secret-path" not in dropped  # a webhook's path is its secret


def test_a_raising_callback_warns_once_and_the_app_goes_on(
    store: SQLiteStore, openai_client: Any
) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("the pager is down")

    @track_costs(project="broken", max_budget=1e-9, on_threshold=broken, on_exceeded=broken)
    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        answer = ask()  # 50, 80, 100 % and exceeded: four calls of the callback
        delivered()
    assert answer.choices[0].message.content
    raised = [w for w in given if "the pager is down" in str(w.message)]
    assert len(raised) == 1 and raised[0].category is TelemetryWarning


def test_a_full_queue_drops_alerts_with_a_warning_and_never_blocks(
    store: SQLiteStore, openai_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _dispatch.Dispatcher(capacity=1)
    monkeypatch.setattr(_dispatch, "dispatcher", small)
    entered, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow(alert: Alert) -> None:
        seen.append(alert.threshold)
        entered.set()
        release.wait(WAIT_S)

    def ask() -> Any:
        return openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    cost = one_call_nanos(store, ask)
    budgeted = track_costs(project="full", max_budget=cost * 10 / 1e9, on_threshold=slow)(ask)
    try:
        for _ in range(5):  # 50 %: its callback holds the alert thread
            budgeted()
        assert entered.wait(WAIT_S)
        with warnings.catch_warnings(record=True) as given:
            warnings.simplefilter("always")
            for _ in range(5):  # 80 % waits in the queue; 100 % finds it full
                budgeted()
        full = [w for w in given if "alert queue is full" in str(w.message)]
        assert len(full) == 1 and full[0].category is TelemetryWarning
    finally:
        release.set()
        assert small.flush(WAIT_S)
        small.close()
    assert seen == [50, 80]


def test_bad_alert_options_are_refused_when_decorating() -> None:
    with pytest.raises(ValueError, match="on_threshold must be a callable"):
        track_costs(project="p", max_budget=1, on_threshold="page me")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="alert_webhook must be an http"):
        track_costs(project="p", max_budget=1, alert_webhook="ftp://example.invalid/hook")
    with pytest.raises(ValueError, match="alert_webhook"):
        llm_toll.run("p", max_budget=1, alert_webhook="not a url")


EXITING = """
import sys
from llm_toll import default_registry, track_costs

default_registry.register_model("exit-model", 1e-6, 2e-6)


@track_costs(project="exiting", model="exit-model", max_budget=1e-9, alert_webhook=sys.argv[1],
             extract_usage=lambda _: ("exit-model", 10, 10))
def call():
    return "answer"


call()  # 50, 80 %, exceeded: three posts to a webhook that never answers
"""


def test_exit_gives_up_on_a_hanging_webhook_within_its_bound(tmp_path: Path) -> None:
    hanging = socket.create_server(("127.0.0.1", 0), backlog=8)  # never accepts: no answer
    try:
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
        env = {**os.environ, "LLM_TOLL_STORE_URL": str(tmp_path / "ledger.db")}
        done = subprocess.run(
            [sys.executable, "-c", EXITING, url],
            capture_output=True,
            text=True,
            env=env,
            timeout=WAIT_S,  # a bound for a hung process, not a measured limit
        )
    finally:
        hanging.close()
    assert done.returncode == 0, done.stderr
    assert "alert(s) were not delivered before exit" in done.stderr
