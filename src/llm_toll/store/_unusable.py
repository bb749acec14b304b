"""The store of a process whose configured store cannot be used (``LLM_TOLL_STORE_URL``
malformed, of an unknown scheme, or needing a driver that is not installed).

It stands in for the store asked for rather than another database: a fleet that meant to
share one budget must not quietly get one per host. Every use fails as a store that is
down does (``StoreError``), so calls go on, warned, their records kept for the store.
"""

from __future__ import annotations

from typing import Any, NoReturn

from llm_toll.store._base import BaseStore
from llm_toll.store._errors import StoreError


class UnusableStore(BaseStore):
    """Every read and write raises ``StoreError(reason)``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise StoreError(self.reason)

    record_call = get_spent = _fail
    reserve = settle_reservation = release_reservation = get_reserved = _fail
    acquire_rate = settle_rate = _fail
    log_usage = log_usage_if_within_budget = get_total_cost = _fail
    get_usage_logs = get_usage_logs_filtered = get_all_project_summaries = _fail
    get_model_summaries = get_project_summaries_for_model = get_daily_cost_trends = _fail
    get_budget_utilization = reset_budget = _fail
    spend = calls = iter_calls = projects = _fail

    def close(self) -> None:
        """Nothing to release."""
