"""The dashboard's first paint on a large ledger: from the page's navigation to its figures
drawn (the ``llm-toll:figures`` mark the page sets), in headless Chromium.

Prints JSON: rows, the first paint of each run (ms, median first), the server's time for
each of the page's two first reads (the last 7 days) and for the overview of all history.
``python benchmarks/dashboard_paint.py [ROWS]``.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.request import urlopen

from ledger import cached_ledger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests

from tests.dashboard.browser import install_chromium

from llm_toll.dashboard import open_dashboard
from llm_toll.store import SQLiteStore

RUNS = 3


def server_ms(url: str) -> float:
    started = time.perf_counter()
    with urlopen(url) as answer:
        answer.read()
    return (time.perf_counter() - started) * 1e3


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    ledger = cached_ledger(rows)
    from playwright.sync_api import sync_playwright

    store = SQLiteStore(db_path=str(ledger))
    server = open_dashboard(store, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # The page's first reads: the last 7 days (as the page opens), then all of history.
        week = (datetime.now(timezone.utc) - timedelta(days=6)).date().isoformat()
        reads = {
            "overview_ms": server_ms(f"{server.url}api/overview?since={week}"),
            "calls_ms": server_ms(f"{server.url}api/calls?since={week}&limit=50"),
            "overview_all_ms": server_ms(f"{server.url}api/overview"),
        }
        paints = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(install_chromium()), args=["--no-sandbox"]
            )
            try:
                for _ in range(RUNS):
                    page = browser.new_page()
                    page.goto(server.url)
                    page.wait_for_selector("body[data-state=ready]", timeout=600_000)
                    paints.append(
                        page.evaluate(
                            "performance.getEntriesByName('llm-toll:figures')[0].startTime"
                        )
                    )
                    page.close()
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        store.close()
    result = {
        "rows": rows,
        "first_paint_ms": statistics.median(paints),
        "first_paint_runs_ms": paints,
        **reads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
