"""Arguments a store refuses before touching its database: amounts it could not keep as an
exact integer, keys of the wrong type, reservations that do not match their call."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import NoReturn

from llm_toll._budget.limits import every_limit
from llm_toll._budget.money import nanos_to_decimal, usd_to_nanos
from llm_toll._budget.records import BudgetSpec, CallRecord, Reservation

MAX_INTEGER = 2**63 - 1
"""The largest amount a store keeps exactly: SQLite's INTEGER, PostgreSQL's BIGINT."""
MAX_USD = nanos_to_decimal(MAX_INTEGER)
"""The largest amount of USD a store keeps: MAX_INTEGER nano-USD (about 9.2 billion)."""


_CALL_AMOUNTS = (
    "CallRecord.cost_nanos",
    "Usage.input_tokens",
    "Usage.output_tokens",
    "Usage.cache_read_input_tokens",
    "Usage.cache_creation_input_tokens",
    "Usage.reasoning_output_tokens",
)


def check_call(
    call: CallRecord, budget: BudgetSpec | None, key_budget: BudgetSpec | None = None
) -> None:
    """Refuse amounts a store would keep as something else than an exact integer."""
    usage = call.usage
    amounts = (
        call.cost_nanos,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_output_tokens,
    )
    for name, value in zip(_CALL_AMOUNTS, amounts, strict=True):
        if type(value) is not int or not 0 <= value <= MAX_INTEGER:
            _refuse_amount(name, value)
    if budget is not None:
        _check_limits("BudgetSpec", budget)
    if key_budget is not None:
        _check_limits("key BudgetSpec", key_budget)
    if call.budget_key is not None and not isinstance(call.budget_key, str):
        raise ValueError(f"CallRecord.budget_key must be a str or None, got {call.budget_key!r}")


def _check_limits(name: str, spec: BudgetSpec) -> None:
    for limit in every_limit(spec):
        value = limit.limit_nanos
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_INTEGER):
            _refuse_amount(f"{name}.limit_nanos", value)


def _refuse_amount(name: str, value: object) -> NoReturn:
    # Checked with type() rather than isinstance(): a bool is not an amount.
    raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def check_reserve(
    *,
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
    for name, limits in (("spec", every_limit(spec)), ("key_spec", _limits(key_spec))):
        for limit in (one.limit_nanos for one in limits):
            if limit is not None and (type(limit) is not int or not 0 <= limit <= MAX_INTEGER):
                raise ValueError(f"{name}.limit_nanos must be a non-negative int, got {limit!r}")
    if budget_key is not None and (not isinstance(budget_key, str) or not budget_key):
        raise ValueError(f"budget_key must be a non-empty str or None, got {budget_key!r}")
    if key_spec is not None and key_spec.reset != spec.reset:
        raise ValueError("key_spec must have the reset period of spec")
    # A reservation holds the project's row of each period it holds a key's row of.
    if not {one.reset for one in _limits(key_spec)} <= {one.reset for one in every_limit(spec)}:
        raise ValueError("every reset period of key_spec must be one of spec")
    return budget_key if key_spec is not None else None


def _limits(spec: BudgetSpec | None) -> tuple[BudgetSpec, ...]:
    return () if spec is None else every_limit(spec)


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


def check_rate(
    scope: str, *, rpm: int | None, tpm: int | None, tokens: int, now: float, name: str
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


def usd_to_nanos_checked(amount: object) -> int | None:
    """Nano-USD of a finite, non-negative amount; None for anything else."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, Decimal)):
        return None
    if isinstance(amount, float) and not math.isfinite(amount):
        return None
    if isinstance(amount, Decimal) and not amount.is_finite():
        return None
    # Compared before converting: Decimal's context cannot quantize a huge amount to nanos.
    if not 0 <= amount <= MAX_USD:
        return None
    nanos = usd_to_nanos(amount)
    return nanos if nanos <= MAX_INTEGER else None


def fits_limit(spent: int, reserved: int, amount: int, limit: int | None) -> bool:
    return limit is None or spent + reserved + amount <= limit
