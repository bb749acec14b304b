"""``llm_toll.record_batch``: the results of a provider batch, recorded at batch prices.

Each succeeded result is one call, written through the same writer as a tracked call (one
ledger row and the budget totals in one transaction, a span, metrics), priced in
genai-prices' ``{"processing": "batch"}`` price context. Each is written once per store, by
its record id (the provider's id of the result): recording the same results again, in
this process or another, writes nothing twice.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from types import MappingProxyType

from opentelemetry.trace import Span

from llm_toll import _runtime
from llm_toll._batch.read import BatchResult, items_of, read_result
from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.periods import Reset, validate_reset
from llm_toll._budget.priced import priced_call
from llm_toll._budget.records import BudgetSpec, CallRecord, PendingWrite
from llm_toll._options import text_option, usd_option
from llm_toll.exceptions import UsageWarning
from llm_toll.telemetry._spans import start_call_span
from llm_toll.usage._base import UsageError
from llm_toll.usage._detect import extract_usage

BATCH_CONTEXT = {"processing": "batch"}
"""genai-prices' price context of a batch request."""
UNKNOWN_MODEL = "unknown"


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What one ``record_batch`` did."""

    recorded: int = 0
    """Succeeded results recorded now, one ledger row each."""
    cost_nanos: int = 0
    """Their cost, in nano-USD (exact)."""
    already_recorded: int = 0
    """Succeeded results the store had recorded before (the same batch recorded again)."""
    not_charged: int = 0
    """Errored, canceled and expired results: providers do not bill them."""
    unreadable: int = 0
    """Results with no usage llm_toll could read (warned): not recorded."""
    unpriced: int = 0
    """Results recorded (tokens) whose model has no known price: their cost is $0."""

    @property
    def cost(self) -> float:
        """The cost of the results recorded now, in USD."""
        return nanos_to_usd(self.cost_nanos)


def record_batch(
    results: object,
    *,
    project: str = "default",
    max_budget: float | None = None,
    reset: Reset | None = None,
    budget_key: str | None = None,
    key_budget: float | None = None,
) -> BatchSummary:
    """Record the results of an OpenAI or Anthropic batch, priced at batch rates.

    ``results`` is what the user holds: the JSONL bytes or text of an OpenAI batch's
    output file (or what ``client.files.content(batch.output_file_id)`` returns), a path to
    such a file, or an iterable of results such as Anthropic's
    ``client.messages.batches.results(batch_id)``. Each succeeded result is recorded as one
    call of ``project`` (its model, usage, response id and operation from the response
    body; priced with genai-prices' ``{"processing": "batch"}`` context, which halves most
    prices), through the same writer as tracked calls: a ledger row, the budget totals, a
    span and metrics. Errored, canceled and expired results are not charged.

    The money is spent already, so a budget never refuses a batch: ``max_budget``,
    ``reset``, ``budget_key`` and ``key_budget`` name the budgets the results count in, and
    their thresholds and exceeded events fire as for any call.

    Each result is recorded once per store, by the provider's id of it (OpenAI's
    ``batch_req_...`` id, Anthropic's message id): recording the same results again (a
    script run twice) records nothing new and counts them in ``already_recorded``.
    Options are checked first: a wrong one is a ``ValueError`` that names it.
    """
    text_option("project", project, required=True)
    limit = usd_option("max_budget", max_budget)
    key_limit = usd_option("key_budget", key_budget)
    validate_reset(reset)
    text_option("budget_key", budget_key)
    if key_budget is not None and budget_key is None:
        raise ValueError("key_budget needs budget_key= to tell which key the results belong to")
    budget = BudgetSpec(limit, reset) if max_budget is not None or reset is not None else None
    key_spec = None
    if budget_key is not None:
        key_spec = BudgetSpec(key_limit, reset)
    writer = _runtime.writer()
    counts = dict.fromkeys(("recorded", "cost_nanos", "already", "free", "bad", "unpriced"), 0)
    for item in items_of(results):
        result = read_result(item)
        if result.status == "not_charged":
            counts["free"] += 1
            continue
        call = _call_of(result, project, budget_key) if result.status == "succeeded" else None
        if call is None:
            counts["bad"] += 1
            continue
        write = PendingWrite(call, budget, key_spec, None, result.key)
        if not writer.record_once(write, partial(_span, call)):
            counts["already"] += 1
            continue
        counts["recorded"] += 1
        counts["cost_nanos"] += call.cost_nanos
        counts["unpriced"] += not call.price_known
    if counts["bad"]:
        warnings.warn(
            f"llm_toll.record_batch: {counts['bad']} result(s) of the batch carried no usage "
            "llm_toll could read; they are not recorded.",
            UsageWarning,
            stacklevel=2,
        )
    return BatchSummary(
        counts["recorded"],
        counts["cost_nanos"],
        counts["already"],
        counts["free"],
        counts["bad"],
        counts["unpriced"],
    )


def _call_of(result: BatchResult, project: str, budget_key: str | None) -> CallRecord | None:
    """The priced record of a succeeded result; None when its usage cannot be read."""
    try:
        found = extract_usage(result.body)
    except UsageError:
        return None
    if found is None or found.estimated:
        return None
    context = MappingProxyType({**found.price_context, **BATCH_CONTEXT})
    # Recorded now: the batch's requests ran earlier, but no one of them has a time of its own.
    return priced_call(
        found,
        project=project,
        model=found.model or UNKNOWN_MODEL,
        started_at=datetime.now(timezone.utc),
        provider=found.provider or result.provider,
        budget_key=budget_key,
        context=context,
    ).call


def _span(call: CallRecord) -> Span:
    return start_call_span(call.project, call.model, provider=call.provider)
