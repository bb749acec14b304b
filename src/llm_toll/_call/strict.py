"""Strict budgets: a call's worst-case cost, reserved in the store before the call runs.

Each provider request of a strict run reserves its own worst case (``request_bound``,
``request_gate``). What is here is the reservation of a whole call from its arguments, made
when a strict decorated function is called: it stands for the call when the function makes
no request llm_toll can see, and is handed back at its first request otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from llm_toll import _runtime
from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import Reservation
from llm_toll._call.plan import BudgetScope, Plan
from llm_toll._call.request_bound import max_output_tokens
from llm_toll._warnings import warn_once
from llm_toll.exceptions import AccountingWarning, BudgetExceededError, UsageWarning
from llm_toll.pricing import default_registry
from llm_toll.store import BaseStore, StoreError
from llm_toll.store._checks import fits_limit, usd_to_nanos_checked
from llm_toll.usage import Usage, estimate_tokens, request_text

# How long a strict call's reservation holds when its process dies before settling it; a
# later reservation of the same budget gives it back after that.
RESERVATION_TTL_S = 900.0


def worst_case_nanos(
    plan: Plan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    at: datetime,
    *,
    quiet: bool = False,
) -> int | None:
    """A strict call's worst-case cost, from its arguments before it runs: the user's
    ``estimate=``, else the prompt's estimated tokens priced as input plus the output-token
    cap priced as output, at the requested model's price. None (warned once per function and
    cause) when it cannot be known; ``quiet``: not warned when the arguments do not say
    (the call's provider requests reserve their own, which is warned when it makes none)."""
    if plan.estimate is not None:
        try:
            usd = plan.estimate(*args, **kwargs)
        except Exception as exc:
            _warn(plan, "estimate-raised", f"its estimate= function raised {exc!r}")
            return None
        nanos = usd_to_nanos_checked(usd)
        if nanos is None:
            _warn(plan, "estimate-value", f"its estimate= function returned {usd!r}, "
                  "not a non-negative number of USD")  # fmt: skip
        return nanos
    seen = plan.call_arguments(args, kwargs)  # with the function's own defaults
    model = plan.requested_model(seen)
    limit = max_output_tokens(seen)
    if model is None or limit is None:
        _warn(
            plan,
            "no-worst-case",
            "its worst-case cost is unknown: it needs a model (model= or a model argument) "
            "and an output cap (max_tokens, max_completion_tokens or max_output_tokens), "
            "or an estimate= function",
            quiet,
        )
        return None
    usage = Usage(input_tokens=estimate_tokens(request_text(args, kwargs)), output_tokens=limit)
    price = default_registry.price(model, usage, at=at)
    if not price.known:
        _warn(plan, "no-price", f"model {model!r} has no known price", quiet)
        return None
    return price.cost_nanos


def _warn(plan: Plan, cause: str, problem: str, quiet: bool = False) -> None:
    if quiet:
        return
    warn_once(
        f"strict-{cause}:{plan.name}",
        f"llm_toll: a strict call of {plan.name}() in project '{plan.project}': {problem}; "
        "such calls get the plain pre-call budget check instead of a reservation.",
        UsageWarning,
    )


def reserve(
    plan: Plan, key: str | None, now: datetime, amount: int
) -> Reservation | BudgetExceededError | None:
    """Reserve ``amount`` in the store for one strict call (blocking: async callers run it
    in the worker). The refusal to raise when it does not fit; None when the store has no
    reservations (a store written for llm-toll 0.13: warned once; the caller falls back to
    the plain check). ``StoreError`` when the store cannot be used: the gates decide."""
    scopes = plan.scopes(key)
    spec = plan.reserved_budget(key)
    key_spec = plan.key_budget if key is not None else None
    store = _runtime.get_store()
    try:
        reservation = store.reserve(
            plan.project,
            budget_key=key,
            spec=spec,
            at=now,
            amount_nanos=amount,
            ttl_s=RESERVATION_TTL_S,
            key_spec=key_spec,
        )
    except NotImplementedError as exc:
        warn_once(
            f"store-reserve:{plan.project}",
            f"llm_toll could not reserve budget for '{plan.project}' ({exc}); strict calls "
            "get the plain pre-call budget check instead.",
            AccountingWarning,
        )
        return None
    if reservation is not None:
        return reservation
    return store_refusal(store, plan, scopes=scopes, now=now, amount=amount)


class _ScopeTotals(NamedTuple):
    scope: BudgetScope
    spent: int
    reserved: int


def store_refusal(
    store: BaseStore,
    plan: Plan,
    *,
    scopes: tuple[BudgetScope, ...],
    now: datetime,
    amount: int,
) -> BudgetExceededError:
    """The error of a refused reservation, naming the scope that had no room for it (the
    project's, if a concurrent release made room meanwhile)."""
    found: _ScopeTotals | None = None
    for scope in scopes:
        reset = scope.spec.reset
        try:
            spent = store.get_spent(plan.project, reset, now, budget_key=scope.key)
            reserved = store.get_reserved(plan.project, reset, now, budget_key=scope.key)
        except StoreError:
            spent = reserved = 0
        if found is None:
            found = _ScopeTotals(scope, spent, reserved)
        if not fits_limit(spent, reserved, amount, scope.spec.limit_nanos):
            found = _ScopeTotals(scope, spent, reserved)
            break
    assert found is not None
    limit = found.scope.spec.limit_nanos or 0
    where = f"project '{plan.project}'"
    if found.scope.key is not None:
        where += f", budget key '{found.scope.key}'"
    message = (
        f"Budget exceeded for {where}: ${nanos_to_usd(found.spent):.4f} spent + "
        f"${nanos_to_usd(found.reserved):.4f} reserved + ${nanos_to_usd(amount):.4f} worst "
        f"case > ${nanos_to_usd(limit):.4f}"
    )
    return BudgetExceededError(
        message,
        project=plan.project,
        current_cost=nanos_to_usd(found.spent),
        max_budget=nanos_to_usd(limit),
        budget_key=found.scope.key,
    )


def release(reservation: Reservation | None) -> None:
    """Give a reservation back (its call failed or was refused later); never raises."""
    if reservation is None:
        return
    try:
        _runtime.get_store().release_reservation(reservation)
    except Exception as exc:
        warn_once(
            f"store-release:{type(exc).__name__}",
            f"llm_toll could not release a budget reservation ({exc}); the store gives it "
            f"back {RESERVATION_TTL_S:g} s after it was made.",
            AccountingWarning,
        )
