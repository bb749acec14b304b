"""Shared rate limits: sliding 60-second windows kept in the store (``shared_limits=True``).

One row per admitted request in ``rate_events`` (its time, whether it counts as a request,
the tokens it holds), pruned of rows older than the window by every admission, inside the
same transaction; a check reads only the rows of its scope in the window (an index on
(scope, at)). The scope's row in ``rate_scopes`` serialises admissions of one scope on
PostgreSQL (SQLite's BEGIN IMMEDIATE already does). The window arithmetic is the
in-process limiter's (``rate_limiter.window_refusal``).

Times are the callers' wall clocks. A row stamped after the caller's ``now`` (written by a
host whose clock runs ahead, or before this host's clock stepped back) is re-stamped
``now`` when it is read: it leaves the window one window later, never more.
"""

from __future__ import annotations

from typing import Final

from llm_toll._budget.records import RateAdmission
from llm_toll.rate_limiter import WINDOW_SECONDS, window_refusal
from llm_toll.store._transaction import Transaction

LOCK_SCOPE: Final = """
INSERT INTO rate_scopes (scope) VALUES (?)
ON CONFLICT (scope) DO UPDATE SET scope = excluded.scope
"""
PRUNE: Final = "DELETE FROM rate_events WHERE scope = ? AND at <= ?"
WINDOW: Final = "SELECT at, request, tokens FROM rate_events WHERE scope = ? ORDER BY at, id"
INSERT: Final = """
INSERT INTO rate_events (scope, at, request, tokens) VALUES (?, ?, ?, ?) RETURNING id
"""
DROP_TOKENS: Final = "UPDATE rate_events SET tokens = 0 WHERE id = ? AND scope = ?"
RESTAMP_FUTURE: Final = "UPDATE rate_events SET at = ? WHERE scope = ? AND at > ?"


def acquire_rate_in(
    tx: Transaction,
    scope: str,
    *,
    rpm: int | None,
    tpm: int | None,
    estimated_tokens: int,
    now: float,
) -> RateAdmission:
    """The body of ``acquire_rate`` in an open write transaction."""
    tx.run(LOCK_SCOPE, (scope,))
    tx.run(PRUNE, (scope, now - WINDOW_SECONDS))
    events = [(float(at), int(request), int(tokens)) for at, request, tokens in tx.run(
        WINDOW, (scope,)
    )]  # fmt: skip
    if events and events[-1][0] > now:  # in time order: the last is the newest
        tx.run(RESTAMP_FUTURE, (now, scope, now))
        events = [(min(at, now), request, tokens) for at, request, tokens in events]
    held = [(at, tokens) for at, _, tokens in events if tokens > 0]
    refusal = window_refusal(
        requests=[at for at, request, _ in events if request],
        held=held,
        held_tokens=sum(tokens for _, tokens in held),
        rpm=rpm,
        tpm=tpm,
        estimated_tokens=estimated_tokens,
        now=now,
    )
    if refusal is not None:
        return RateAdmission(False, refusal.retry_after, refusal.limit_type)
    tokens = estimated_tokens if tpm is not None else 0
    [(lease_id,)] = tx.run(INSERT, (scope, now, 1, tokens))
    return RateAdmission(True, 0.0, None, int(lease_id))


def settle_rate_in(
    tx: Transaction, scope: str, *, lease_id: int, actual_tokens: int, now: float
) -> None:
    """The body of ``settle_rate`` in an open write transaction: the estimate goes (if its
    row is still in the window), the actual tokens count from ``now``."""
    tx.run(LOCK_SCOPE, (scope,))
    tx.run(DROP_TOKENS, (lease_id, scope))
    if actual_tokens > 0:
        tx.run(INSERT, (scope, now, 0, actual_tokens))
