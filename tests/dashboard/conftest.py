"""A dashboard over a real SQLite ledger, served on a free 127.0.0.1 port for one test;
for the page's tests, Debian's chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llm_toll.dashboard import DashboardServer, open_dashboard
from llm_toll.store import SQLiteStore

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

Serve = Callable[..., DashboardServer]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(db_path=str(tmp_path / "ledger.db"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def serve(store: SQLiteStore) -> Iterator[Serve]:
    """Starts dashboards over ``store`` (options as ``open_dashboard``'s); stops them after."""
    running: list[tuple[DashboardServer, threading.Thread]] = []

    def start(**options: object) -> DashboardServer:
        options.setdefault("host", "127.0.0.1")
        server = open_dashboard(store, **options)  # type: ignore[arg-type]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    try:
        yield start
    finally:
        for server, thread in running:
            server.shutdown()
            server.server_close()
            thread.join()


# Module scope, not session: Playwright's sync API keeps an event loop running on this
# thread while it is open, and the async tests of other modules need none running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    from tests.dashboard.browser import ChromiumUnavailable, install_chromium

    try:
        chromium = install_chromium()
    except ChromiumUnavailable as error:
        pytest.fail(f"no Chromium for the dashboard's tests: {error}", pytrace=False)
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        yield context.new_page()
    finally:
        context.close()
