"""Strict budgets: money set aside per call before it runs, the same SQL on both backends.

Every transaction takes the project's rows of its periods first (record_call's lock order),
so reservations, settlements and reclaims of one project are serialised on those rows. A
reservation holds every limit that applies to its call, each over its own period (a limit
of the code and limits kept in the store): all of them or none.

A reservation is stamped with the time of the ``reserve`` that made it (``at``, the
caller's clock) and expires ``ttl_s`` later. One stamped after a refused ``reserve``'s
``at`` (made by a host whose clock runs ahead, or before this host's clock stepped back)
is re-stamped ``at``, keeping its TTL: a crashed process's reservation holds the budget
for at most its TTL after someone needs the room, however far ahead its clock was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

from llm_toll._budget.limits import every_limit
from llm_toll._budget.periods import period_key
from llm_toll._budget.records import BudgetSpec, Reservation
from llm_toll.store._checks import fits_limit
from llm_toll.store._time import as_utc, parse_time, utc_now
from llm_toll.store._totals import PROJECT_KEY, lock_order
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
    """The body of ``reserve`` in an open write transaction: ``amount`` fits every limit
    of ``spec`` and ``key_spec`` (each over its own period), or nothing is reserved."""
    at = as_utc(at)
    now = time_param(utc_now())
    periods = _limits_by_period(spec, at)
    key_periods = _limits_by_period(key_spec, at) if key is not None else {}
    # Every project row first, then the reclaims (which touch key rows), then the key's
    # rows: the lock order of record_call, whatever the periods.
    totals = {
        period: _reserve_row(tx, project, PROJECT_KEY, period, limit=limit, now=now)
        for period, limit in periods.items()
    }
    reclaimed_by_period = _reclaim_expired(tx, project, periods, at, time_param=time_param)
    for period, reclaimed in reclaimed_by_period.items():
        spent, reserved = totals[period]
        totals[period] = (spent, reserved - reclaimed)
    fits = all(fits_limit(*totals[period], amount, limit) for period, limit in periods.items())
    if fits and key is not None:
        fits = all(
            fits_limit(*_reserve_row(tx, project, key, period, limit=limit, now=now), amount, limit)
            for period, limit in key_periods.items()
        )
    if not fits:
        # Rare, and only here does a reservation from the future keep anyone waiting.
        for period in periods:
            _restamp_future(tx, project=project, period=period, at=at, time_param=time_param)
        return None
    expires_at = at + timedelta(seconds=ttl_s)
    rows: dict[str, int] = {}
    for period in periods:
        row_key = key if period in key_periods else None
        tx.run(ADD_RESERVED, (amount, project, PROJECT_KEY, period))
        if row_key is not None:
            tx.run(ADD_RESERVED, (amount, project, row_key, period))
        [(reservation_id,)] = tx.run(
            INSERT_RESERVATION,
            (project, row_key, period, amount, time_param(expires_at), time_param(at)),
        )
        rows[period] = int(reservation_id)
    own = period_key(spec.reset, at)
    others = tuple((rows[period], period) for period in periods if period != own)
    return Reservation(rows[own], project, key, own, amount, expires_at, spec, key_spec, others)


def _limits_by_period(spec: BudgetSpec | None, at: datetime) -> dict[str, int | None]:
    """The limit of each period of ``spec`` (its own and those of ``spec.also``) at ``at``,
    in lock order."""
    if spec is None:
        return {}
    limits = {period_key(limit.reset, at): limit.limit_nanos for limit in every_limit(spec)}
    return {period: limits[period] for period in sorted(limits, key=lock_order)}


def _reserve_row(
    tx: Transaction, project: str, key: str, period: str, *, limit: int | None, now: object
) -> tuple[int, int]:
    """Lock a scope's row of ``period`` (made if missing); its spent and reserved totals."""
    [(spent, reserved)] = tx.run(RESERVE_ROW, (project, key, period, limit, now))
    return int(spent), int(reserved)


def _reclaim_expired(
    tx: Transaction,
    project: str,
    periods: Iterable[str],
    at: datetime,
    *,
    time_param: Callable[[datetime], object],
) -> dict[str, int]:
    """Delete the expired reservations of the project's ``periods`` (left by crashed
    processes) and take them off their rows; the amount taken off each period's project
    row. Only the expired ones are read (an index on (project, period, expires_at)),
    whatever the length of the history: the project's row of a period holds every
    reservation of that period, keyed ones included."""
    by_period: dict[str, int] = {}
    by_key: dict[tuple[str, str], int] = {}
    for period in periods:
        for reclaimed_key, amount in tx.run(RECLAIM_EXPIRED, (project, period, time_param(at))):
            by_period[period] = by_period.get(period, 0) + amount
            if reclaimed_key is not None:
                scope = (reclaimed_key, period)
                by_key[scope] = by_key.get(scope, 0) + amount
    for period, total in by_period.items():
        tx.run(ADD_RESERVED, (-total, project, PROJECT_KEY, period))
    # One order for every transaction: by key, then each key's periods in lock order.
    for reclaimed_key, period in sorted(by_key, key=lambda s: (s[0], lock_order(s[1]))):
        tx.run(ADD_RESERVED, (-by_key[reclaimed_key, period], project, reclaimed_key, period))
    return by_period


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
    """Delete ``reservation``'s rows and take their amounts off the budget rows, for those
    still there (not released, settled or reclaimed before): whoever deletes a row
    subtracts it, once. The caller holds the project's rows of its periods."""
    project = reservation.project
    for reservation_id, period in sorted(reservation.rows(), key=lambda row: lock_order(row[1])):
        for key, amount in tx.run(DELETE_RESERVATION, (reservation_id, project)):
            tx.run(ADD_RESERVED, (-amount, project, PROJECT_KEY, period))
            if key is not None:
                tx.run(ADD_RESERVED, (-amount, project, key, period))


def lock_project_rows(tx: Transaction, reservation: Reservation) -> None:
    """Lock the project's rows of ``reservation``'s periods, in lock order, as ``reserve``
    takes them."""
    for period in sorted((period for _, period in reservation.rows()), key=lock_order):
        tx.lock(PROJECT_ROW, (reservation.project, PROJECT_KEY, period))
