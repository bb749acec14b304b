"""The README's picture of the dashboard: a fortnight of calls of three projects, written
through the real store, shown in headless Chromium and saved as a PNG.

    python -m tests.dashboard.screenshot docs/dashboard.png
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from llm_toll._budget.money import usd_to_nanos
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.dashboard import open_dashboard
from llm_toll.store import SQLiteStore
from llm_toll.usage._base import Usage
from tests.dashboard.browser import install_chromium, wait_ready

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# project, model, cost of one call in nano-USD, calls a day, budget keys
TRAFFIC = [
    ("support-bot", "gpt-4o", 4_200_000, 40, ("acme", "globex", "initech")),
    ("support-bot", "gpt-4o-mini", 180_000, 90, ("acme", "globex", "initech")),
    ("summarizer", "claude-sonnet-4", 9_500_000, 25, (None,)),
    ("search", "text-embedding-3-small", 160, 300, (None,)),
]
DAILY = BudgetSpec(usd_to_nanos(10), "daily")
MONTHLY = BudgetSpec(usd_to_nanos(40), "monthly")


def fill(store: SQLiteStore, now: datetime, days: int = 14) -> None:
    """``days`` of traffic, recorded in the order of time, ending ``now``."""
    chance = random.Random(7)
    calls = []
    for day in range(days, -1, -1):
        for project, model, cost, per_day, keys in TRAFFIC:
            for _ in range(int(per_day * chance.uniform(0.5, 1.5))):
                # Today's calls fall in the last hours, so the forecast has a rate.
                hours = chance.uniform(0, 3) if day == 0 else chance.uniform(0, 24)
                priced = chance.random() > 0.005
                calls.append(
                    CallRecord(
                        project,
                        model,
                        Usage(input_tokens=chance.randint(200, 3_000), output_tokens=400),
                        int(cost * chance.uniform(0.6, 1.4)) if priced else 0,
                        now - timedelta(days=day, hours=hours),
                        budget_key=chance.choice(keys),
                        estimated=chance.random() < 0.02,
                        price_known=priced,
                    )
                )
    for call in sorted(calls, key=lambda call: call.started_at):
        store.record_call(call, DAILY if call.project == "support-bot" else MONTHLY)


def screenshot(browser: Browser, target: Path) -> None:
    """Fill a fresh ledger, open the dashboard on it in ``browser``, save the page."""
    with tempfile.TemporaryDirectory() as scratch:
        store = SQLiteStore(db_path=str(Path(scratch) / "ledger.db"))
        server = open_dashboard(store)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        try:
            fill(store, datetime.now(timezone.utc))
            thread.start()
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            try:
                page.goto(server.url)
                wait_ready(page)
                page.click("button[data-days='30']")
                page.wait_for_selector("body[data-state=ready]")
                page.screenshot(path=str(target))
            finally:
                page.close()
        finally:
            if thread.is_alive():
                server.shutdown()
            server.server_close()
            store.close()


def main(target: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(install_chromium()), args=["--no-sandbox"]
        )
        try:
            screenshot(browser, target)
        finally:
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
