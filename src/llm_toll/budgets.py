"""Budgets as data: limits kept in the store, set and changed without a deploy.

A limit set here (or with ``llm-toll budget set``) applies to every process that uses the
store, on top of any ``max_budget=`` in code: each limit is enforced over its own reset
period and the stricter wins (see the README's "Budgets as data"). Running processes pick
a change up within ``refresh_interval()`` seconds (``LLM_TOLL_BUDGET_REFRESH_S``,
default 5).
"""

from __future__ import annotations

import getpass
import socket
from decimal import Decimal

from llm_toll import _runtime
from llm_toll._budget.limits import StoredLimit, reset_of_label
from llm_toll._budget.periods import Reset
from llm_toll._budget.stored import cache
from llm_toll._options import seconds_option, text_option, usd_option
from llm_toll.store import BaseStore

__all__ = [
    "StoredLimit",
    "list_budgets",
    "refresh_interval",
    "remove_budget",
    "set_budget",
    "set_refresh_interval",
]


def set_budget(
    project: str,
    limit: float | Decimal | int | str,
    *,
    reset: Reset | str | None = None,
    key: str | None = None,
    store: BaseStore | None = None,
    set_by: str | None = None,
) -> StoredLimit:
    """Keep a limit of ``limit`` USD for ``project`` (or its budget ``key``) over ``reset``
    (``"daily"``, ``"weekly"``, ``"monthly"``; None or ``"lifetime"``: never reset),
    replacing the limit kept for that scope and period. ``set_by`` says who set it
    (default: user@host). ``store``: the process's store (``LLM_TOLL_STORE_URL``) unless
    given. ValueError for a bad argument; ``StoreError`` when the store cannot keep it."""
    text_option("project", project, required=True)
    text_option("key", key)
    text_option("set_by", set_by)
    nanos = usd_option("limit", limit, required=True)
    assert nanos is not None
    target = store or _runtime.get_store()
    stored = target.set_budget_limit(
        project,
        nanos,
        reset=_reset(reset),
        budget_key=key,
        set_by=set_by if set_by is not None else _who(),
    )
    cache.forget()
    return stored


def list_budgets(
    project: str | None = None, *, store: BaseStore | None = None
) -> list[StoredLimit]:
    """The limits kept in the store (of ``project`` only, if given), by project, key and
    period."""
    limits = (store or _runtime.get_store()).get_budget_limits()
    return [limit for limit in limits if project is None or limit.project == project]


def remove_budget(
    project: str,
    *,
    key: str | None = None,
    reset: Reset | str | None = None,
    store: BaseStore | None = None,
) -> int:
    """Remove the limits kept for ``project`` (or its budget ``key``): the one over
    ``reset`` (``"lifetime"`` for the one never reset), or, with None, every one of that
    scope. Returns how many were removed; calls then fall back to the limits in code."""
    text_option("project", project, required=True)
    text_option("key", key)
    period = None if reset is None else _label(reset)
    removed = (store or _runtime.get_store()).remove_budget_limits(
        project, budget_key=key, period=period
    )
    cache.forget()
    return removed


def refresh_interval() -> float:
    """The longest a running process goes on with limits it read before (seconds)."""
    return cache.refresh_s


def set_refresh_interval(seconds: float) -> None:
    """Read the stored limits at most every ``seconds`` (overrides
    ``LLM_TOLL_BUDGET_REFRESH_S``); a change made elsewhere binds this process within that
    long."""
    checked = seconds_option("seconds", seconds, required=True)
    assert checked is not None
    cache.refresh_s = checked


def _reset(reset: Reset | str | None) -> Reset | None:
    return None if reset is None else reset_of_label(_label(reset))


def _label(reset: str) -> str:
    if not isinstance(reset, str):
        raise ValueError(f"reset must be a str or None, got {reset!r}")
    reset_of_label(reset)
    return reset


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
