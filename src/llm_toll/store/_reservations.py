"""Strict budgets: money set aside per call before it runs, the same SQL on both backends.

Every transaction takes the project's row of the period first (record_call's lock order),
so reservations, settlements and reclaims of one project are serialised on that row.

A reservation is stamped with the time of the ``reserve`` that made it (``at``, the
caller's clock) and expires ``ttl_s`` later. One stamped after a refused ``reserve``'s
``at`` (made by a host whose clock runs ahead, or before this host's clock stepped back)
is re-stamped ``at``, keeping its TTL: a crashed process's reservation holds the budget
for at most its TTL after someone needs the room, however far ahead its clock was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec, Reservation
from llm_toll.store._checks import fits_limit
from llm_toll.store._time import as_utc, parse_time, utc_now
from llm_toll.store._totals import PROJECT_KEY
from llm_toll.store._transaction import Transaction

RESERVE_ROW: Final = """
INSERT INTO budget_totals (project, budget_key, period, spent_nanos, limit_nanos, updated_at)
VALUES (?, ?, ?, 0, ?, ?)
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    limit_nanos = excluded.limit_nanos, updated_at = excluded.updated_at
RETURNING spent_nanos, reserved_nanos
"""
RECLAIM_EXPIRED: Final = """
DELETE FROM reservations WHERE project = ? AND period = ? AND expires_at <= ?
RETURNING budget_key, amount_nanos
"""
ADD_RESERVED: Final = """
UPDATE budget_totals SET reserved_nanos = reserved_nanos + ?
WHERE project = ? AND budget_key = ? AND period = ?
"""
INSERT_RESERVATION: Final = """
INSERT INTO reservations (project, budget_key, period, amount_nanos, expires_at, created_at)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id
"""
DELETE_RESERVATION: Final = """
DELETE FROM reservations WHERE id = ? AND project = ? RETURNING budget_key, amount_nanos
"""
PROJECT_ROW: Final = """
SELECT 1 FROM budget_totals WHERE project = ? AND budget_key = ? AND period = ?
"""
FUTURE_RESERVATIONS: Final = """
SELECT id, created_at, expires_at FROM reservations
WHERE project = ? AND period = ? AND created_at > ?
"""
RESTAMP_RESERVATION: Final = "UPDATE reservations SET created_at = ?, expires_at = ? WHERE id = ?"


def reserve_in(
    tx: Transaction,
    *,
    project: str,
    key: str | None,
    spec: BudgetSpec,
    key_spec: BudgetSpec | None,
    at: datetime,
    amount: int,
    ttl_s: float,
    time_param: Callable[[datetime], object],
) -> Reservation | None:
    """The body of ``reserve`` in an open write transaction."""
    at = as_utc(at)
    period = period_key(spec.reset, at)
    now = time_param(utc_now())
    [(spent, reserved)] = tx.run(RESERVE_ROW, (project, PROJECT_KEY, period, spec.limit_nanos, now))
    # Reservations left by crashed processes: only the expired ones are read (an index on
    # (project, period, expires_at)), whatever the length of the history. The project's row
    # holds every reservation of its period, keyed ones included.
    total = 0
    per_key: dict[str, int] = {}
    for reclaimed_key, reclaimed in tx.run(RECLAIM_EXPIRED, (project, period, time_param(at))):
        total += reclaimed
        if reclaimed_key is not None:
            per_key[reclaimed_key] = per_key.get(reclaimed_key, 0) + reclaimed
    if total:
        tx.run(ADD_RESERVED, (-total, project, PROJECT_KEY, period))
        reserved -= total
        for reclaimed_key in sorted(per_key):  # one order for every transaction
            tx.run(ADD_RESERVED, (-per_key[reclaimed_key], project, reclaimed_key, period))
    fits = fits_limit(spent, reserved, amount, spec.limit_nanos)
    if fits and key is not None and key_spec is not None:
        [(key_spent, key_reserved)] = tx.run(
            RESERVE_ROW, (project, key, period, key_spec.limit_nanos, now)
        )
        fits = fits_limit(key_spent, key_reserved, amount, key_spec.limit_nanos)
    if not fits:
        # Rare, and only here does a reservation from the future keep anyone waiting.
        _restamp_future(tx, project=project, period=period, at=at, time_param=time_param)
        return None
    tx.run(ADD_RESERVED, (amount, project, PROJECT_KEY, period))
    if key is not None:
        tx.run(ADD_RESERVED, (amount, project, key, period))
    expires_at = at + timedelta(seconds=ttl_s)
    [(reservation_id,)] = tx.run(
        INSERT_RESERVATION, (project, key, period, amount, time_param(expires_at), time_param(at))
    )
    return Reservation(
        int(reservation_id), project, key, period, amount, expires_at, spec, key_spec
    )


def _restamp_future(
    tx: Transaction,
    *,
    project: str,
    period: str,
    at: datetime,
    time_param: Callable[[datetime], object],
) -> None:
    """Reservations of the period made after ``at`` count as made at ``at``, their TTL kept."""
    for reservation_id, created_at, expires_at in tx.run(
        FUTURE_RESERVATIONS, (project, period, time_param(at))
    ):
        ttl = parse_time(expires_at) - parse_time(created_at)
        tx.run(RESTAMP_RESERVATION, (time_param(at), time_param(at + ttl), reservation_id))


def release_in(tx: Transaction, reservation: Reservation) -> None:
    """Delete ``reservation`` and take its amount off its rows, if it is still there (not
    released, settled or reclaimed before): whoever deletes it subtracts it, once."""
    project = reservation.project
    for key, amount in tx.run(DELETE_RESERVATION, (reservation.id, project)):
        tx.run(ADD_RESERVED, (-amount, project, PROJECT_KEY, reservation.period))
        if key is not None:
            tx.run(ADD_RESERVED, (-amount, project, key, reservation.period))
