"""What the stores share above their SQL: argument checks, budget state, the 0.13 API.

Nothing here talks to a database. A store subclasses :class:`CompatMethods` and implements
``record_call``, ``get_spent`` and the read queries; the llm-toll 0.13 writes
(``log_usage``, ``log_usage_if_within_budget``) and ``get_total_cost`` come from here, so
every backend answers them the same way.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from llm_toll.budget import period_key, threshold_mask, thresholds_crossed
from llm_toll.exceptions import BudgetExceededError
from llm_toll.money import nanos_to_usd, usd_to_nanos
from llm_toll.records import BudgetSpec, BudgetState, CallRecord, RateAdmission, Reservation
from llm_toll.store.base import BaseStore
from llm_toll.store.errors import StoreError as StoreError
from llm_toll.store.errors import StoreWarning as StoreWarning
from llm_toll.usage.base import Usage, UsageError

MAX_INTEGER = 2**63 - 1
"""The largest amount a store keeps exactly: SQLite's INTEGER, PostgreSQL's BIGINT."""

BOOLEAN_COLUMNS = frozenset({"price_known", "estimated"})

_STORE_PACKAGE_DIR = os.path.dirname(__file__)


class CompatMethods(BaseStore):
    """The llm-toll 0.13 writes and lifetime total, over ``record_call`` and ``get_spent``."""

    def log_usage(
        self, project: str, model: str, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        call = compat_call(project, model, input_tokens, output_tokens, cost)
        try:
            self.record_call(call)
        except StoreError as exc:
            warn(exc)

    def log_usage_if_within_budget(
        self,
        project: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost: float,
        max_budget: float,
    ) -> float:
        call = compat_call(project, model, input_tokens, output_tokens, cost)
        limit = usd_to_nanos_checked(max_budget)
        if limit is None:
            warn(f"max_budget {max_budget!r} is not a non-negative amount; recorded unchecked")
        try:
            state = self.record_call(call, None if limit is None else BudgetSpec(limit))
        except StoreError as exc:
            warn(exc)
            return 0.0
        total = nanos_to_usd(state.spent_nanos)
        if limit is not None and state.spent_nanos - call.cost_nanos >= limit:
            raise BudgetExceededError(project=project, current_cost=total, max_budget=max_budget)
        return total

    def get_total_cost(self, project: str) -> float:
        try:
            return nanos_to_usd(self.get_spent(project, None, utc_now()))
        except StoreError as exc:
            warn(exc)
            return 0.0


PROJECT_KEY = ""
"""The budget key of a project's own running totals."""


def tracked_key(call: CallRecord, key_budget: BudgetSpec | None) -> str | None:
    """The budget key whose totals ``record_call`` updates: set on the call and budgeted."""
    if key_budget is None or not call.budget_key:
        return None
    return call.budget_key


def scope_key(budget_key: str | None) -> str:
    """The ``budget_key`` column of a scope: '' for the project itself."""
    return budget_key or PROJECT_KEY


def check_call(
    call: CallRecord, budget: BudgetSpec | None, key_budget: BudgetSpec | None = None
) -> None:
    """Refuse amounts a store would keep as something else than an exact integer."""
    usage = call.usage
    amounts: tuple[tuple[str, int], ...] = (
        ("CallRecord.cost_nanos", call.cost_nanos),
        ("Usage.input_tokens", usage.input_tokens),
        ("Usage.output_tokens", usage.output_tokens),
        ("Usage.cache_read_input_tokens", usage.cache_read_input_tokens),
        ("Usage.cache_creation_input_tokens", usage.cache_creation_input_tokens),
        ("Usage.reasoning_output_tokens", usage.reasoning_output_tokens),
    )
    if budget is not None and budget.limit_nanos is not None:
        amounts += (("BudgetSpec.limit_nanos", budget.limit_nanos),)
    if key_budget is not None and key_budget.limit_nanos is not None:
        amounts += (("key BudgetSpec.limit_nanos", key_budget.limit_nanos),)
    if call.budget_key is not None and not isinstance(call.budget_key, str):
        raise ValueError(f"CallRecord.budget_key must be a str or None, got {call.budget_key!r}")
    for name, value in amounts:
        # type() rather than isinstance(): a bool is not an amount.
        if type(value) is not int or not 0 <= value <= MAX_INTEGER:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def budget_state(
    spent: int, fired: int, cost: int, limit: int | None, period: str
) -> tuple[BudgetState, int]:
    """The state reported after adding ``cost`` to a period total, and its new threshold mask.

    ``spent`` is the total after the call and ``fired`` the mask of thresholds fired earlier
    in the period. The returned mask differs from ``fired`` only when this call crossed a
    threshold; the store then writes it in the same transaction.
    """
    if limit is None:
        return BudgetState(spent, None, period), fired
    crossed = thresholds_crossed(spent, limit, fired)
    state = BudgetState(spent, limit, period, crossed, spent - cost < limit <= spent)
    return state, fired | threshold_mask(crossed)


def compat_call(
    project: str, model: str, input_tokens: object, output_tokens: object, cost: object
) -> CallRecord:
    """A CallRecord from llm-toll 0.13 arguments; bad values are warned about and zeroed."""
    try:
        usage = Usage.checked(input_tokens, output_tokens)
    except UsageError as exc:
        warn(f"bad token counts for project {project!r}, model {model!r}: {exc}; recorded as 0")
        usage = Usage()
    cost_nanos = usd_to_nanos_checked(cost)
    if cost_nanos is None:
        warn(
            f"cost {cost!r} for project {project!r}, model {model!r} is not a non-negative "
            "amount; recorded as 0 and flagged as unpriced"
        )
    return CallRecord(
        project=project,
        model=model,
        usage=usage,
        cost_nanos=cost_nanos or 0,
        started_at=utc_now(),
        price_known=cost_nanos is not None,
    )


def usd_to_nanos_checked(amount: object) -> int | None:
    """Nano-USD of a finite, non-negative amount; None for anything else."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, Decimal)):
        return None
    if isinstance(amount, float) and not math.isfinite(amount):
        return None
    if isinstance(amount, Decimal) and not amount.is_finite():
        return None
    if amount < 0:
        return None
    nanos = usd_to_nanos(amount)
    return nanos if nanos <= MAX_INTEGER else None


def as_dict(names: Iterable[str], row: Iterable[Any]) -> dict[str, Any]:
    """A row with the keys of llm-toll 0.13 in their order, then the exact nano amounts.

    A column named ``<x>_nanos`` is returned both as ``<x>`` (float USD) and as itself.
    """
    result: dict[str, Any] = {}
    exact: dict[str, int | None] = {}
    for name, value in zip(names, row, strict=True):
        if name.endswith("_nanos"):
            result[name.removesuffix("_nanos")] = None if value is None else nanos_to_usd(value)
            exact[name] = value
        else:
            result[name] = bool(value) if name in BOOLEAN_COLUMNS else value
    result.update(exact)
    return result


def add_utilization(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Budget-total rows (from ``as_dict``) with their ``utilization``: spent / limit.

    ``budget_key`` (added after the llm-toll 0.13 keys) is moved last.
    """
    for row in rows:
        limit = row["limit_nanos"]
        budget_key = row.pop("budget_key", PROJECT_KEY)
        row["utilization"] = row["total_cost_nanos"] / limit if limit else None
        row["budget_key"] = budget_key
    return rows


def warn(problem: StoreError | str) -> None:
    """A StoreWarning pointing at the line that called the store."""
    message = str(problem) if isinstance(problem, StoreError) else f"llm_toll: {problem}"
    warnings.warn(message, StoreWarning, stacklevel=_stacklevel_outside_the_stores())


def _stacklevel_outside_the_stores() -> int:
    # However deep the helpers of any store module go.
    level = 1
    frame = sys._getframe(1)
    while frame.f_back is not None and (
        os.path.dirname(frame.f_code.co_filename) == _STORE_PACKAGE_DIR
    ):
        frame = frame.f_back
        level += 1
    return level


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC, converted as ``budget.period_key`` does, so a row and its period agree."""
    return at if at.tzinfo is timezone.utc else at.astimezone(timezone.utc)


# -- strict budgets: reservations, the same algorithm over either backend's SQL -------------
# Statements use '?' placeholders; the PostgreSQL store turns them into '%s'. Every
# transaction takes the project's row of the period first (record_call's lock order), so
# reservations, settlements and reclaims of one project are serialised on that row.

Run = Callable[[str, tuple[object, ...]], list[tuple[Any, ...]]]
"""Runs one statement in the open transaction and returns its rows."""

RESERVE_ROW = """
INSERT INTO budget_totals (project, budget_key, period, spent_nanos, limit_nanos, updated_at)
VALUES (?, ?, ?, 0, ?, ?)
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    limit_nanos = excluded.limit_nanos, updated_at = excluded.updated_at
RETURNING spent_nanos, reserved_nanos
"""
RECLAIM_EXPIRED = """
DELETE FROM reservations WHERE project = ? AND period = ? AND expires_at <= ?
RETURNING budget_key, amount_nanos
"""
ADD_RESERVED = """
UPDATE budget_totals SET reserved_nanos = reserved_nanos + ?
WHERE project = ? AND budget_key = ? AND period = ?
"""
INSERT_RESERVATION = """
INSERT INTO reservations (project, budget_key, period, amount_nanos, expires_at, created_at)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id
"""
DELETE_RESERVATION = """
DELETE FROM reservations WHERE id = ? AND project = ? RETURNING budget_key, amount_nanos
"""
GET_RESERVED = """
SELECT reserved_nanos FROM budget_totals WHERE project = ? AND budget_key = ? AND period = ?
"""


def check_reserve(
    budget_key: str | None,
    spec: BudgetSpec,
    amount_nanos: int,
    ttl_s: float,
    key_spec: BudgetSpec | None,
) -> str | None:
    """Refuse bad ``reserve`` arguments; returns the key whose row is reserved, if any."""
    if type(amount_nanos) is not int or not 0 <= amount_nanos <= MAX_INTEGER:
        raise ValueError(f"amount_nanos must be a non-negative int, got {amount_nanos!r}")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not 0 < ttl_s < 1e9:
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    key_limit = None if key_spec is None else key_spec.limit_nanos
    for name, limit in (("spec", spec.limit_nanos), ("key_spec", key_limit)):
        if limit is not None and (type(limit) is not int or not 0 <= limit <= MAX_INTEGER):
            raise ValueError(f"{name}.limit_nanos must be a non-negative int, got {limit!r}")
    if budget_key is not None and (not isinstance(budget_key, str) or not budget_key):
        raise ValueError(f"budget_key must be a non-empty str or None, got {budget_key!r}")
    if key_spec is not None and key_spec.reset != spec.reset:
        raise ValueError("key_spec must have the reset period of spec")
    return budget_key if key_spec is not None else None


def reserve_in(
    run: Run,
    project: str,
    key: str | None,
    spec: BudgetSpec,
    key_spec: BudgetSpec | None,
    at: datetime,
    amount: int,
    ttl_s: float,
    when: Callable[[datetime], object],
) -> Reservation | None:
    """The body of ``reserve`` in an open write transaction; ``when`` converts a time to
    the backend's column value."""
    at = as_utc(at)
    period = period_key(spec.reset, at)
    now = when(utc_now())
    [(spent, reserved)] = run(RESERVE_ROW, (project, PROJECT_KEY, period, spec.limit_nanos, now))
    # Reservations left by crashed processes: only the expired ones are read (an index on
    # (project, period, expires_at)), whatever the length of the history. The project's row
    # holds every reservation of its period, keyed ones included.
    total = 0
    per_key: dict[str, int] = {}
    for reclaimed_key, reclaimed in run(RECLAIM_EXPIRED, (project, period, when(at))):
        total += reclaimed
        if reclaimed_key is not None:
            per_key[reclaimed_key] = per_key.get(reclaimed_key, 0) + reclaimed
    if total:
        run(ADD_RESERVED, (-total, project, PROJECT_KEY, period))
        reserved -= total
        for reclaimed_key in sorted(per_key):  # one order for every transaction
            run(ADD_RESERVED, (-per_key[reclaimed_key], project, reclaimed_key, period))
    fits = fits_limit(spent, reserved, amount, spec.limit_nanos)
    if fits and key is not None and key_spec is not None:
        [(key_spent, key_reserved)] = run(
            RESERVE_ROW, (project, key, period, key_spec.limit_nanos, now)
        )
        fits = fits_limit(key_spent, key_reserved, amount, key_spec.limit_nanos)
    if not fits:
        return None
    run(ADD_RESERVED, (amount, project, PROJECT_KEY, period))
    if key is not None:
        run(ADD_RESERVED, (amount, project, key, period))
    expires_at = at + timedelta(seconds=ttl_s)
    [(reservation_id,)] = run(
        INSERT_RESERVATION, (project, key, period, amount, when(expires_at), now)
    )
    return Reservation(
        int(reservation_id), project, key, period, amount, expires_at, spec, key_spec
    )


def fits_limit(spent: int, reserved: int, amount: int, limit: int | None) -> bool:
    return limit is None or spent + reserved + amount <= limit


def release_in(run: Run, reservation: Reservation) -> None:
    """Delete ``reservation`` and take its amount off its rows, if it is still there (not
    released, settled or reclaimed before): whoever deletes it subtracts it, once."""
    project = reservation.project
    for key, amount in run(DELETE_RESERVATION, (reservation.id, project)):
        run(ADD_RESERVED, (-amount, project, PROJECT_KEY, reservation.period))
        if key is not None:
            run(ADD_RESERVED, (-amount, project, key, reservation.period))


def check_settlement(reservation: Reservation, call: CallRecord) -> None:
    if call.project != reservation.project:
        raise ValueError(
            f"the call of project {call.project!r} does not match its reservation's "
            f"project {reservation.project!r}"
        )
    if reservation.budget_key is not None and call.budget_key != reservation.budget_key:
        raise ValueError(
            f"the call's budget key {call.budget_key!r} does not match its reservation's "
            f"{reservation.budget_key!r}"
        )


# -- shared rate limits: sliding 60-second windows in the store -----------------------------
# One row per admitted request in ``rate_events`` (its time, whether it counts as a request,
# the tokens it holds), pruned of rows older than the window by every admission, inside the
# same transaction; a check reads only the rows of its scope in the window (an index on
# (scope, at)). The scope's row in ``rate_scopes`` serialises admissions of one scope on
# PostgreSQL (SQLite's BEGIN IMMEDIATE already does).

RATE_WINDOW_S = 60.0

RATE_LOCK_SCOPE = """
INSERT INTO rate_scopes (scope) VALUES (?)
ON CONFLICT (scope) DO UPDATE SET scope = excluded.scope
"""
RATE_PRUNE = "DELETE FROM rate_events WHERE scope = ? AND at <= ?"
RATE_WINDOW = "SELECT at, request, tokens FROM rate_events WHERE scope = ? ORDER BY at, id"
RATE_INSERT = """
INSERT INTO rate_events (scope, at, request, tokens) VALUES (?, ?, ?, ?) RETURNING id
"""
RATE_DROP_TOKENS = "UPDATE rate_events SET tokens = 0 WHERE id = ? AND scope = ?"


def check_rate(
    scope: str, rpm: int | None, tpm: int | None, tokens: int, now: float, name: str
) -> None:
    """Refuse bad ``acquire_rate`` / ``settle_rate`` arguments."""
    if not isinstance(scope, str) or not scope:
        raise ValueError(f"scope must be a non-empty str, got {scope!r}")
    for limit_name, limit in (("rpm", rpm), ("tpm", tpm)):
        if limit is not None and (type(limit) is not int or not 0 < limit <= MAX_INTEGER):
            raise ValueError(f"{limit_name} must be a positive int or None, got {limit!r}")
    if type(tokens) is not int or not 0 <= tokens <= MAX_INTEGER:
        raise ValueError(f"{name} must be a non-negative int, got {tokens!r}")
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValueError(f"now must be a finite number of seconds, got {now!r}")


def rate_refusal(
    events: Sequence[tuple[float, int, int]],
    rpm: int | None,
    tpm: int | None,
    estimated_tokens: int,
    now: float,
) -> tuple[str, float] | None:
    """``(limit_type, retry_after)`` when a request of ``estimated_tokens`` does not fit
    beside ``events`` (``(at, request, tokens)``, oldest first, all in the window), else None.

    The rules of :class:`llm_toll.rate_limiter.RateLimiter`: a request needs one token of
    room under ``tpm`` at least, an estimate above the whole limit needs an empty window, and
    when both limits refuse, the one that frees up last is reported.
    """
    refusals: list[tuple[str, float]] = []
    if rpm is not None:
        requests = [at for at, request, _ in events if request]
        if len(requests) >= rpm:
            oldest_to_expire = requests[len(requests) - rpm]
            refusals.append(("rpm", oldest_to_expire + RATE_WINDOW_S - now))
    if tpm is not None:
        held = [(at, tokens) for at, _, tokens in events if tokens > 0]
        needed = min(max(estimated_tokens, 1), tpm)
        excess = sum(tokens for _, tokens in held) + needed - tpm
        if excess > 0:
            freed = 0
            for at, tokens in held:
                freed += tokens
                if freed >= excess:
                    refusals.append(("tpm", at + RATE_WINDOW_S - now))
                    break
    if not refusals:
        return None
    limit_type, retry_after = max(refusals, key=lambda refusal: refusal[1])
    return limit_type, max(0.0, retry_after)


def acquire_rate_in(
    run: Run, scope: str, rpm: int | None, tpm: int | None, estimated_tokens: int, now: float
) -> RateAdmission:
    """The body of ``acquire_rate`` in an open write transaction."""
    run(RATE_LOCK_SCOPE, (scope,))
    run(RATE_PRUNE, (scope, now - RATE_WINDOW_S))
    events = [(float(at), int(request), int(tokens)) for at, request, tokens in run(
        RATE_WINDOW, (scope,)
    )]  # fmt: skip
    refusal = rate_refusal(events, rpm, tpm, estimated_tokens, now)
    if refusal is not None:
        limit_type, retry_after = refusal
        return RateAdmission(False, retry_after, limit_type)
    tokens = estimated_tokens if tpm is not None else 0
    [(lease_id,)] = run(RATE_INSERT, (scope, now, 1, tokens))
    return RateAdmission(True, 0.0, None, int(lease_id))


def settle_rate_in(run: Run, scope: str, lease_id: int, actual_tokens: int, now: float) -> None:
    """The body of ``settle_rate`` in an open write transaction: the estimate goes (if its
    row is still in the window), the actual tokens count from ``now``."""
    run(RATE_LOCK_SCOPE, (scope,))
    run(RATE_DROP_TOKENS, (lease_id, scope))
    if actual_tokens > 0:
        run(RATE_INSERT, (scope, now, 0, actual_tokens))
