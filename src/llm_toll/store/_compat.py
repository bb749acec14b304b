"""llm-toll 0.13's store API over any store: its writes (``log_usage``,
``log_usage_if_within_budget``) and lifetime total, written once over ``record_call`` and
``get_spent``, so every backend answers them the same way."""

from __future__ import annotations

import os
import sys
import warnings

from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.exceptions import BudgetExceededError
from llm_toll.store._base import BaseStore
from llm_toll.store._checks import usd_to_nanos_checked
from llm_toll.store._errors import StoreError, StoreWarning
from llm_toll.store._time import utc_now
from llm_toll.usage._base import Usage, UsageError

_STORE_PACKAGE_DIR = os.path.dirname(__file__)


class CompatMethods(BaseStore):
    """The llm-toll 0.13 writes and lifetime total, over ``record_call`` and ``get_spent``."""

    def log_usage(
        self, project: str, model: str, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        call = compat_call(
            project, model, input_tokens=input_tokens, output_tokens=output_tokens, cost=cost
        )
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
        call = compat_call(
            project, model, input_tokens=input_tokens, output_tokens=output_tokens, cost=cost
        )
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


def compat_call(
    project: str, model: str, *, input_tokens: object, output_tokens: object, cost: object
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
