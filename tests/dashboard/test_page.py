"""The dashboard in headless Chromium: calls written through the real store, then read
back from the page's DOM."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from llm_toll._budget.forecast import forecast_budget
from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.records import BudgetSpec
from llm_toll.dashboard import TOKEN_ENV
from llm_toll.store import SQLiteStore
from tests.dashboard.browser import wait_ready, watch
from tests.dashboard.conftest import Serve
from tests.dashboard.screenshot import screenshot
from tests.stores.helpers import a_run, make_call, one_refusal

pytestmark = pytest.mark.browser

NOW = datetime.now(timezone.utc).replace(microsecond=0)
NO_KEY = "\u2013"  # what the page shows for a budget without a key
DAILY_5 = BudgetSpec(usd_to_nanos(5), "daily")
MONTHLY_2 = BudgetSpec(usd_to_nanos(2), "monthly")


def record_mix(store: SQLiteStore, at: datetime = NOW) -> None:
    """Dear, cheap and tiny calls; unpriced, estimated and partly priced ones; budgets."""
    store.record_call(
        make_call(1_234_567_890, project="chat-app", at=at, budget_key="alice"),
        DAILY_5,
        MONTHLY_2,
    )
    store.record_call(
        make_call(12_345_678, project="chat-app", at=at, budget_key="bob"), DAILY_5, MONTHLY_2
    )
    for _ in range(9):  # nine embeddings, $0.00000144 in all: never shown as $0.0000
        store.record_call(make_call(160, project="search", model="text-embedding-3-small", at=at))
    store.record_call(make_call(0, project="search", model="mystery", at=at, price_known=False))
    store.record_call(make_call(0, project="search", model="guess", at=at, estimated=True))
    store.record_call(
        make_call(0, project="search", model="tools", at=at, unpriced_units=("web_search",))
    )


def cells(page: Page, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.dataset.nanos ?? c.textContent))",
    )
    return rows


def shown_money(page: Page, selector: str) -> dict[str, tuple[str, str]]:
    """name -> (exact nanos, text shown) of a breakdown table."""
    rows: list[list[Any]] = page.eval_on_selector_all(
        f"{selector} tbody tr[data-name]",
        "rows => rows.map(r => [r.dataset.name, r.cells[2].dataset.nanos, r.cells[2].textContent])",
    )
    return {name: (nanos, text) for name, nanos, text in rows}


def test_the_page_shows_the_store_figures(store: SQLiteStore, serve: Serve, page: Page) -> None:
    record_mix(store)
    server = serve()
    requests = watch(page, server.url)
    before = datetime.now(timezone.utc)
    page.goto(server.url)
    wait_ready(page)
    after = datetime.now(timezone.utc)

    # The figures equal the store's own, exactly.
    for group, selector in (("project", "#by-project"), ("model", "#by-model"), ("key", "#by-key")):
        expected = {
            str(row[group] if row[group] is not None else "(none)"): str(row["cost_nanos"])
            for row in store.spend([group])
        }
        shown = shown_money(page, selector)
        assert {name: nanos for name, (nanos, _) in shown.items()} == expected, group
    total = sum(int(row["cost_nanos"]) for row in store.spend(["project"]))
    assert page.get_attribute("#total-cost", "data-nanos") == str(total)
    assert page.get_attribute("#total-calls", "data-value") == "14"
    assert page.get_attribute("#total-unpriced", "data-value") == "1"
    assert page.get_attribute("#total-estimated", "data-value") == "1"

    # ...and are shown with the precision their size needs.
    assert page.text_content("#total-cost") == "$1.25"
    assert page.get_attribute("#total-cost", "title") == "$1.246915008"  # exact, on hover
    projects = shown_money(page, "#by-project")
    assert projects["search"][1] == "$0.00000144"
    assert shown_money(page, "#by-key")["bob"][1] == "$0.0123"

    # Budgets of the current periods, with limit, spent and use.
    budgets = {(row[0], row[1], row[2]): row[3:] for row in cells(page, "#budgets") if len(row) > 3}
    daily = budgets[("chat-app", NO_KEY, "daily")]
    assert daily[:5] == [
        NOW.date().isoformat(),
        str(DAILY_5.limit_nanos),
        "1246913568",
        "24.9%",
        "1246913568",  # all of it spent in the last hour: the burn rate's window
    ]
    assert DAILY_5.limit_nanos is not None
    outlook = forecast_budget(
        store, "chat-app", limit_nanos=DAILY_5.limit_nanos, reset="daily", now=before
    )
    runs_out_at = page.get_attribute(
        '#budgets tr[data-project="chat-app"][data-key=""] td.runout', "data-at"
    )
    if outlook.runs_out:  # at 3 hours from now: unless the day ends first
        assert outlook.seconds_left is not None and runs_out_at
        seconds = timedelta(seconds=outlook.seconds_left)
        assert before + seconds <= datetime.fromisoformat(runs_out_at) <= after + seconds
    else:
        assert runs_out_at == ""
    assert budgets[("chat-app", "alice", "monthly")][1:3] == [
        str(MONTHLY_2.limit_nanos),
        "1234567890",
    ]

    # Recent calls, newest first, with their flags.
    calls = store.calls(limit=50)
    ids = page.eval_on_selector_all(
        "#calls tbody tr", "rows => rows.map(r => Number(r.dataset.id))"
    )
    assert ids == [row["id"] for row in calls]
    flags = dict(
        page.eval_on_selector_all(
            "#calls tbody tr",
            "rows => rows.map(r => [r.cells[2].textContent, r.cells[7].textContent])",
        )
    )
    assert (flags["mystery"], flags["guess"], flags["tools"]) == (
        "unpriced",
        "estimated",
        "partial",
    )
    assert flags["gpt-4o"] == ""

    assert requests.seen and requests.elsewhere == []


def test_a_new_call_appears_without_reloading(store: SQLiteStore, serve: Serve, page: Page) -> None:
    record_mix(store)
    server = serve()
    requests = watch(page, server.url)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(server.url)
    wait_ready(page)

    store.record_call(make_call(2_000_000_000, project="late", at=NOW + timedelta(seconds=1)))
    (newest,) = store.calls(limit=1)
    page.wait_for_selector(f'#calls tbody tr[data-id="{newest["id"]}"]')
    page.wait_for_selector('#by-project tr[data-name="late"]')
    total = sum(int(row["cost_nanos"]) for row in store.spend(["project"]))
    page.wait_for_selector(f"#total-cost[data-nanos='{total}']")
    assert navigations == [server.url]  # the page was never loaded again
    assert requests.elsewhere == []


def test_the_date_range_filters_every_figure(store: SQLiteStore, serve: Serve, page: Page) -> None:
    day1 = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    store.record_call(make_call(1_000, project="old", at=day1))
    store.record_call(make_call(30_000, project="mid", at=day1 + timedelta(days=1)))
    store.record_call(make_call(500_000, project="new", at=day1 + timedelta(days=2)))
    server = serve()
    page.goto(server.url)
    wait_ready(page)
    # The page opens on the last 7 days: these calls are older.
    assert page.get_attribute("#total-calls", "data-value") == "0"
    page.click("button[data-days='0']")
    # Waited for by selector: the page's Content-Security-Policy forbids evaluated strings.
    page.wait_for_selector("#total-calls[data-value='3']")

    page.fill("#since", "2026-03-03")
    page.fill("#until", "2026-03-03")  # inclusive in the page
    page.wait_for_selector("#total-calls[data-value='1']")
    until = day1 + timedelta(days=2)
    (expected,) = store.spend(["project"], since=day1 + timedelta(days=1), until=until)
    assert shown_money(page, "#by-project") == {"mid": (str(expected["cost_nanos"]), "$0.00003")}
    ids = page.eval_on_selector_all("#calls tbody tr[data-id]", "rows => rows.length")
    assert ids == 1


def test_off_loopback_the_page_needs_its_token(
    store: SQLiteStore, serve: Serve, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    record_mix(store)
    server = serve(host="0.0.0.0")
    port = server.server_address[1]
    base = f"http://127.0.0.1:{port}/"
    refused = page.goto(base)
    assert refused is not None and refused.status == 401
    assert page.query_selector("#total-cost") is None

    token = server.access.token
    page.goto(f"{base}?token={token}")
    wait_ready(page)
    assert page.url == base  # the token left the address bar for a cookie
    assert page.get_attribute("#total-calls", "data-value") == "14"


def test_the_readme_screenshot_can_be_made(browser: Browser, tmp_path: Path) -> None:
    target = tmp_path / "dashboard.png"
    screenshot(browser, target)
    assert target.read_bytes().startswith(b"\x89PNG")


def test_runs_and_refused_calls_are_shown_as_the_store_keeps_them(
    store: SQLiteStore, serve: Serve, page: Page
) -> None:
    record_mix(store)
    started = NOW - timedelta(minutes=2)
    store.record_runs([a_run("outer", at=started, project="chat-app", cost_nanos=1_246_913_568)])
    capped: dict[str, Any] = {"parent_id": "outer", "status": "refused", "max_cost_nanos": 1_000}
    store.record_runs([a_run("inner", at=started, minutes=1, cost_nanos=160, **capped)])
    minute = NOW.replace(second=0)
    store.record_refusals([one_refusal(0, at=minute, budget_key="alice", reason="key")] * 100)
    server = serve()
    requests = watch(page, server.url)
    page.goto(server.url)
    wait_ready(page)

    shown_runs = page.eval_on_selector_all(
        "#runs tbody tr",
        "rows => rows.map(r => [r.dataset.id, ...[...r.cells].map("
        "c => c.dataset.nanos ?? c.textContent)])",
    )
    assert [row[0] for row in shown_runs] == [run["id"] for run in store.runs()]
    inner = shown_runs[0]
    assert inner[2:] == ["agent", "proj", "1.50 s", "2", "160", "1000", "refused"]
    assert shown_runs[1][2:4] == ["agent", "chat-app"]
    assert shown_runs[1][6:] == ["1246913568", "\u2013", "ok"]  # no cap

    [refused] = cells(page, "#refusals")
    assert refused[1:6] == ["proj", "gpt-4o", "alice", "key", "100"]
    assert refused[7] == "refused"

    # A refusal counted while the page is open is added to its row.
    store.record_refusals([one_refusal(1, at=minute, budget_key="alice", reason="key")])
    page.wait_for_selector("#refusals td[data-value='101']")
    assert requests.elsewhere == []
