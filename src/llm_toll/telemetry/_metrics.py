"""The metric instruments of DESIGN.md, created once on llm_toll's meter.

The OpenTelemetry API hands out proxy instruments until the app installs a MeterProvider,
so creating them at first use is safe and recording into them is nearly free when metrics
are not configured.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    ObservableGauge,
    Observation,
    UpDownCounter,
)
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from llm_toll._budget.limits import every_limit
from llm_toll._budget.money import nanos_to_usd
from llm_toll._budget.records import BudgetSpec, BudgetState, CallRecord
from llm_toll.telemetry import _names as attr
from llm_toll.telemetry import _semconv as semconv
from llm_toll.telemetry._forecasts import observe_time_remaining
from llm_toll.telemetry._forecasts import unwatch as unwatch_forecast
from llm_toll.telemetry._forecasts import watch as watch_forecast
from llm_toll.telemetry._providers import meter, metrics_wanted, on_reconfigure

if TYPE_CHECKING:
    from llm_toll.store import BaseStore

# Instrument names: the GenAI ones from the semantic-conventions package.
METRIC_TOKEN_USAGE: Final = gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_DURATION: Final = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_OPERATION_COST: Final = "gen_ai.client.operation.cost"  # proposed GenAI convention
METRIC_COST: Final = "llm_toll.cost"
METRIC_BUDGET_LIMIT: Final = "llm_toll.budget.limit"
METRIC_BUDGET_SPENT: Final = "llm_toll.budget.spent"
METRIC_BUDGET_UTILIZATION: Final = "llm_toll.budget.utilization"
METRIC_BUDGET_TIME_REMAINING: Final = "llm_toll.budget.time_remaining"
METRIC_BUDGET_REJECTIONS: Final = "llm_toll.budget.rejections"
METRIC_RATELIMIT_REJECTIONS: Final = "llm_toll.ratelimit.rejections"
METRIC_UNPRICED_CALLS: Final = "llm_toll.calls.unpriced"
METRIC_COST_DIFFERENCE: Final = "llm_toll.cost.difference"
# GenAI semantic conventions v0.1.0, under OTEL_SEMCONV_STABILITY_OPT_IN=
# gen_ai_latest_experimental in place of gen_ai.client.token.usage and
# gen_ai.client.operation.duration: token counters by gen_ai.token.modality (the cache and
# reasoning ones count parts of the input and output ones), per-call token histograms (not
# by modality) and the duration histogram under its new name.
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
METRIC_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
METRIC_CACHE_READ_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
METRIC_CACHE_WRITE_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
METRIC_REASONING_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
METRIC_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
METRIC_OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"


# Bucket boundaries recommended by the GenAI semantic conventions.
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864]  # fmt: skip
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92]  # fmt: skip
# From a fraction of a cent to a few dollars per call.
COST_BUCKETS = [1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]


@dataclass(frozen=True)
class Instruments:
    token_usage: Histogram
    duration: Histogram
    cost_histogram: Histogram
    cost_counter: Counter
    budget_limit: ObservableGauge
    budget_spent: ObservableGauge
    budget_utilization: ObservableGauge
    budget_time_remaining: ObservableGauge
    budget_rejections: Counter
    ratelimit_rejections: Counter
    unpriced_calls: Counter
    cost_difference: UpDownCounter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        return cls(
            token_usage=meter.create_histogram(
                METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Tokens used per LLM call, by token type.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            ),
            duration=meter.create_histogram(
                METRIC_DURATION,
                unit="s",
                description="Duration of LLM calls.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            ),
            cost_histogram=meter.create_histogram(
                METRIC_OPERATION_COST,
                unit="USD",
                description="Cost of one LLM call.",
                explicit_bucket_boundaries_advisory=COST_BUCKETS,
            ),
            cost_counter=meter.create_counter(
                METRIC_COST, unit="USD", description="Money spent on LLM calls."
            ),
            # Observed at collection time from the latest state, so a call pays nothing for
            # them (synchronous gauges would cost three more measurements per call).
            budget_limit=meter.create_observable_gauge(
                METRIC_BUDGET_LIMIT,
                callbacks=[_budget_observations(0)],
                unit="USD",
                description="Configured budget.",
            ),
            budget_spent=meter.create_observable_gauge(
                METRIC_BUDGET_SPENT,
                callbacks=[_budget_observations(1)],
                unit="USD",
                description="Spend in the current period.",
            ),
            budget_utilization=meter.create_observable_gauge(
                METRIC_BUDGET_UTILIZATION,
                callbacks=[_budget_observations(2)],
                unit="1",
                description="Spent divided by limit.",
            ),
            # Read from the store at collection time (see telemetry._forecasts).
            budget_time_remaining=meter.create_observable_gauge(
                METRIC_BUDGET_TIME_REMAINING,
                callbacks=[observe_time_remaining],
                unit="s",
                description="Seconds until the budget runs out at its burn rate of the last "
                "hour, when that comes before the period ends; 0 when spent.",
            ),
            budget_rejections=meter.create_counter(
                METRIC_BUDGET_REJECTIONS,
                unit="{call}",
                description="Calls refused because the budget was spent.",
            ),
            ratelimit_rejections=meter.create_counter(
                METRIC_RATELIMIT_REJECTIONS,
                unit="{call}",
                description="Calls refused by a local rate limit.",
            ),
            unpriced_calls=meter.create_counter(
                METRIC_UNPRICED_CALLS,
                unit="{call}",
                description="Calls whose model has no known price (recorded at $0).",
            ),
            # Up and down: a provider may bill less than llm_toll's price, and a histogram
            # takes no negative values.
            cost_difference=meter.create_up_down_counter(
                METRIC_COST_DIFFERENCE,
                unit="USD",
                description="Cost the provider reported minus llm_toll's own price of it.",
            ),
        )


@dataclass(frozen=True)
class LatestInstruments:
    """The GenAI conventions v0.1.0 instruments, made only when the app opts in."""

    duration: Histogram
    input_tokens: Counter
    output_tokens: Counter
    cache_read_tokens: Counter
    cache_write_tokens: Counter
    reasoning_tokens: Counter
    operation_input_tokens: Histogram
    operation_output_tokens: Histogram

    @classmethod
    def create(cls, meter: Meter) -> LatestInstruments:
        def tokens(name: str, description: str) -> Counter:
            return meter.create_counter(name, unit="{token}", description=description)

        def per_call(name: str, description: str) -> Histogram:
            return meter.create_histogram(
                name,
                unit="{token}",
                description=description,
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )

        return cls(
            duration=meter.create_histogram(
                METRIC_INFERENCE_DURATION,
                unit="s",
                description="Duration of LLM calls.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            ),
            input_tokens=tokens(METRIC_INPUT_TOKENS, "Input tokens, cached ones included."),
            output_tokens=tokens(METRIC_OUTPUT_TOKENS, "Output tokens, reasoning included."),
            cache_read_tokens=tokens(METRIC_CACHE_READ_TOKENS, "Input tokens read from cache."),
            cache_write_tokens=tokens(METRIC_CACHE_WRITE_TOKENS, "Input tokens written to cache."),
            reasoning_tokens=tokens(METRIC_REASONING_TOKENS, "Output tokens of reasoning."),
            operation_input_tokens=per_call(
                METRIC_OPERATION_INPUT_TOKENS, "Input tokens of one LLM call."
            ),
            operation_output_tokens=per_call(
                METRIC_OPERATION_OUTPUT_TOKENS, "Output tokens of one LLM call."
            ),
        )


_lock = threading.Lock()
_instruments: Instruments | None = None
_latest: LatestInstruments | None = None


def instruments() -> Instruments:
    global _instruments
    if _instruments is None:
        with _lock:
            if _instruments is None:
                _instruments = Instruments.create(meter())
    return _instruments


def latest_instruments() -> LatestInstruments:
    global _latest
    if _latest is None:
        with _lock:
            if _latest is None:
                _latest = LatestInstruments.create(meter())
    return _latest


def _forget_instruments() -> None:
    """setup_telemetry() replaced the meter: make instruments anew on the next use."""
    global _instruments, _latest
    with _lock:
        _instruments = _latest = None


on_reconfigure(_forget_instruments)


def _base(call: CallRecord) -> dict[str, str]:
    return {
        attr.OPERATION: call.operation,
        attr.PROVIDER: call.provider or "unknown",
        attr.REQUEST_MODEL: call.model,
        attr.RESPONSE_MODEL: call.model,
    }


def record_call(call: CallRecord, error_type: str | None = None, with_key: bool = False) -> None:
    """Token, duration and cost metrics of one finished call.

    ``with_key``: the cost counter carries the call's budget key (opt-in: one series per key).
    """
    if not metrics_wanted():
        return
    base = _base(call)
    timed = base if error_type is None else {**base, attr.ERROR_TYPE: error_type}
    if semconv.latest():
        _record_latest_tokens(latest_instruments(), call, base)
        latest_instruments().duration.record(call.duration_s, timed)
    else:
        ins = instruments()
        ins.token_usage.record(call.usage.input_tokens, {**base, attr.TOKEN_TYPE: "input"})
        ins.token_usage.record(call.usage.output_tokens, {**base, attr.TOKEN_TYPE: "output"})
        ins.duration.record(call.duration_s, timed)
    record_cost(call, with_key)


def record_cost(call: CallRecord, with_key: bool = False) -> None:
    """The cost metrics of one finished call only: for a call whose token and duration
    metrics another instrumentation records (a span it made, ``price_foreign_spans``)."""
    if not metrics_wanted():
        return
    ins = instruments()
    provider = call.provider or "unknown"
    base = _base(call)
    cost = nanos_to_usd(call.cost_nanos)
    ins.cost_histogram.record(cost, base)
    counted = {attr.PROJECT: call.project, attr.PROVIDER: provider, attr.REQUEST_MODEL: call.model}
    if with_key and call.budget_key:
        counted[attr.BUDGET_KEY] = call.budget_key
    ins.cost_counter.add(cost, counted)
    if not call.price_known:
        ins.unpriced_calls.add(1, {attr.PROVIDER: provider, attr.REQUEST_MODEL: call.model})
    if call.local_cost_nanos is not None:  # the provider's figure, beside llm_toll's own
        ins.cost_difference.add(
            nanos_to_usd(call.cost_nanos - call.local_cost_nanos),
            {attr.PROVIDER: provider, attr.REQUEST_MODEL: call.model},
        )


def _record_latest_tokens(ins: LatestInstruments, call: CallRecord, base: dict[str, str]) -> None:
    """The v0.1.0 token counters, each count split by modality (what the provider reported
    as audio or image; text the rest, as ``Usage.units`` has it; all ``unknown`` when the
    counts were estimated), and the per-call histograms."""
    usage = call.usage
    counts = {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_read": usage.cache_read_input_tokens,
    }
    parts: dict[str, dict[str, int]] = {"input": {}, "output": {}, "cache_read": {}}
    if not call.estimated:
        for unit, count in usage.units.items():
            part = attr.MODALITY_UNITS.get(unit)
            if part is not None:
                parts[part[2]][part[1]] = count
    rest = "unknown" if call.estimated else "text"
    for which, counter in (
        ("input", ins.input_tokens),
        ("output", ins.output_tokens),
        ("cache_read", ins.cache_read_tokens),
    ):
        split = parts[which]
        whole = counts[which]
        if not whole and which == "cache_read":
            continue
        for modality, count in split.items():
            counter.add(count, {**base, attr.TOKEN_MODALITY: modality})
        remainder = max(0, whole - sum(split.values()))
        if remainder or not split:
            counter.add(remainder, {**base, attr.TOKEN_MODALITY: rest})
    if usage.cache_creation_input_tokens:
        ins.cache_write_tokens.add(
            usage.cache_creation_input_tokens, {**base, attr.TOKEN_MODALITY: rest}
        )
    if usage.reasoning_output_tokens:
        ins.reasoning_tokens.add(usage.reasoning_output_tokens, {**base, attr.TOKEN_MODALITY: rest})
    ins.operation_input_tokens.record(usage.input_tokens, base)
    ins.operation_output_tokens.record(usage.output_tokens, base)


# (project, period label, budget key or None) -> (limit USD, spent USD, utilization): the
# latest budget state, read by the observable gauges when metrics are collected.
_budgets: dict[tuple[str, str, str | None], tuple[float, float, float | None]] = {}


def _budget_observations(index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        for (project, period, key), values in list(_budgets.items()):
            value = values[index]
            if value is not None:
                labels = {attr.PROJECT: project, attr.BUDGET_PERIOD: period}
                if key is not None:
                    labels[attr.BUDGET_KEY] = key
                yield Observation(value, labels)

    return observe


def record_budget(
    project: str,
    budget: BudgetSpec,
    state: BudgetState,
    *,
    key: str | None = None,
    store: BaseStore | None = None,
    combined: BudgetSpec | None = None,
) -> None:
    """The budget gauges' latest state of a project, or of one of its budget keys (opt-in);
    with ``store``, the one the state came from, the budget's forecast too. ``combined``:
    the scope's limits over several periods (``BudgetSpec.also``) of which ``budget`` binds
    now; the series of its other periods are dropped, so a limit that stopped binding
    shows no stale figure."""
    if state.limit_nanos is None or not metrics_wanted():
        return
    instruments()
    limit = state.limit_nanos
    utilization = state.spent_nanos / limit if limit > 0 else None
    scope = (project, attr.period_label(budget.reset), key or None)
    _budgets[scope] = (nanos_to_usd(limit), nanos_to_usd(state.spent_nanos), utilization)
    if combined is not None and combined.also:
        for other in every_limit(combined):
            if other.reset != budget.reset:
                _drop_budget((project, attr.period_label(other.reset), key or None))
    if store is not None:
        watch_forecast(store, project, reset=budget.reset, limit_nanos=limit, key=key)


def _drop_budget(scope: tuple[str, str, str | None]) -> None:
    """No more series of a budget: its gauges and its forecast."""
    _budgets.pop(scope, None)
    unwatch_forecast(scope)


RejectionKind = Literal["budget", "ratelimit"]


def record_rejection(project: str, kind: RejectionKind) -> None:
    if not metrics_wanted():
        return
    ins = instruments()
    counter = ins.budget_rejections if kind == "budget" else ins.ratelimit_rejections
    counter.add(1, {attr.PROJECT: project})


def record_failure(operation: str, model: str, duration_s: float, error_type: str) -> None:
    """Duration of a call that raised: the semconv duration histogram with ``error.type``."""
    if not metrics_wanted():
        return
    duration = latest_instruments().duration if semconv.latest() else instruments().duration
    duration.record(
        duration_s,
        {attr.OPERATION: operation, attr.REQUEST_MODEL: model, attr.ERROR_TYPE: error_type},
    )
