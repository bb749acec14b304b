"""Headless Chromium from Debian's package, driven by Playwright.

Playwright launches the system binary (``executable_path``): no browser is downloaded. It
was chosen over speaking the DevTools protocol by hand because it reports every request a
page makes (``page.on("request")``), waits on DOM conditions instead of sleeping, and takes
screenshots, all through one maintained API.

Chromium is installed by ``scripts/install-chromium.sh`` (apt, once per machine, as the
e2e tests install Prometheus).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, Request

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 20 * 60


class ChromiumUnavailable(RuntimeError):
    """Chromium could not be installed or found."""


def install_chromium() -> Path:
    """The path of Debian's chromium, installed first when missing."""
    try:
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "install-chromium.sh")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ChromiumUnavailable(
            f"install-chromium.sh did not finish in {INSTALL_TIMEOUT_S} s"
        ) from None
    if done.returncode != 0:
        raise ChromiumUnavailable(
            f"install-chromium.sh failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        if name == "CHROMIUM" and value:
            return Path(value)
    raise ChromiumUnavailable(f"install-chromium.sh printed no CHROMIUM=: {done.stdout!r}")


@dataclass
class Requests:
    """Every request a page made, and those that went anywhere but the dashboard."""

    origin: str
    seen: list[str] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.seen.append(request.url)

    @property
    def elsewhere(self) -> list[str]:
        return [url for url in self.seen if _origin(url) != self.origin]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def watch(page: Page, base_url: str) -> Requests:
    """Record every request ``page`` makes from now on."""
    requests = Requests(_origin(base_url))
    page.on("request", requests.record)
    return requests


def wait_ready(page: Page) -> None:
    """Until the figures are drawn (the page marks its body when they are)."""
    page.wait_for_selector("body[data-state=ready]")
