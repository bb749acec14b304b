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
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from llm_toll.budget import threshold_mask, thresholds_crossed
from llm_toll.exceptions import BudgetExceededError
from llm_toll.money import nanos_to_usd, usd_to_nanos
from llm_toll.records import BudgetSpec, BudgetState, CallRecord
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
