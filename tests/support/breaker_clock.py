"""The stores' breaker on a clock the test moves: a recheck comes when the test says so,
never because the machine was slow, and back-off delays are exact (no jitter)."""

from __future__ import annotations

import pytest

from llm_toll.store import _breaker


class BreakerClock:
    """Stands still until ``advance``; the breaker's ``_clock``."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def freeze_breaker_clock(monkeypatch: pytest.MonkeyPatch, *, jitter: bool = False) -> BreakerClock:
    """Put every store's breaker on a clock of the test's (restored by ``monkeypatch``);
    without ``jitter`` each back-off is its upper bound: 0.5 s, 1 s, 2 s..."""
    clock = BreakerClock()
    monkeypatch.setattr(_breaker, "_clock", clock)
    if not jitter:
        monkeypatch.setattr(_breaker, "_random", lambda: 1.0)
    return clock
