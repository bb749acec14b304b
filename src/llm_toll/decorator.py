"""``@track_costs``: check the options, make the plan, and wrap the function for its shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from llm_toll._budget.periods import Reset, validate_reset
from llm_toll._budget.records import BudgetSpec
from llm_toll._call import shapes
from llm_toll._call.arguments import cost_arguments
from llm_toll._call.plan import (
    STORE_ERROR_POLICIES,
    UNPRICED_POLICIES,
    Plan,
    StoreErrorPolicy,
    UnpricedPolicy,
)
from llm_toll._options import count_option, text_option, usd_option
from llm_toll._runtime import check_store_environment, set_reporter, set_store
from llm_toll.alerts._alert import AlertCallback
from llm_toll.alerts._options import alert_options
from llm_toll.rate_limiter import RateLimiter

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["set_reporter", "set_store", "track_costs"]


@overload
def track_costs(fn: F) -> F: ...


@overload
def track_costs(
    *,
    project: str = "default",
    model: str | None = None,
    max_budget: float | None = None,
    reset: Reset | None = None,
    rate_limit: int | None = None,
    tpm_limit: int | None = None,
    extract_usage: Callable[[Any], Any] | None = None,
    budget_key: Callable[..., str | None] | None = None,
    key_budget: float | None = None,
    key_in_metrics: bool = False,
    strict: bool = False,
    estimate: Callable[..., float] | None = None,
    wait: bool = False,
    shared_limits: bool = False,
    max_run_cost: float | None = None,
    clamp: bool = True,
    on_store_error: StoreErrorPolicy | None = None,
    on_unpriced: UnpricedPolicy = "warn",
    on_threshold: AlertCallback | None = None,
    on_exceeded: AlertCallback | None = None,
    alert_webhook: str | None = None,
) -> Callable[[F], F]: ...


def track_costs(
    fn: F | None = None,
    *,
    project: str = "default",
    model: str | None = None,
    max_budget: float | None = None,
    reset: Reset | None = None,
    rate_limit: int | None = None,
    tpm_limit: int | None = None,
    extract_usage: Callable[[Any], Any] | None = None,
    budget_key: Callable[..., str | None] | None = None,
    key_budget: float | None = None,
    key_in_metrics: bool = False,
    strict: bool = False,
    estimate: Callable[..., float] | None = None,
    wait: bool = False,
    shared_limits: bool = False,
    max_run_cost: float | None = None,
    clamp: bool = True,
    on_store_error: StoreErrorPolicy | None = None,
    on_unpriced: UnpricedPolicy = "warn",
    on_threshold: AlertCallback | None = None,
    on_exceeded: AlertCallback | None = None,
    alert_webhook: str | None = None,
) -> F | Callable[[F], F]:
    """Track the cost of every call of the decorated function and enforce its budget.

    Works on sync and async functions, generator and async generator functions, and
    functions that return an SDK stream. Each call becomes an OpenTelemetry span with
    GenAI usage and cost attributes, and is recorded in the budget store.

    Every option is checked here, when the function is decorated: a wrong one (a budget
    that is negative, not finite or more than the store holds, a ``model`` that is not a
    non-empty string...) raises ``ValueError`` naming it, and so does a
    ``LLM_TOLL_STORE_URL`` that names no usable store.

    Args:
        project: the budget scope calls are recorded under.
        model: the model name to price with, instead of the one the response reports (a
            non-empty string).
        max_budget: USD. Once the spend of the current period reaches it, calls are
            refused with ``BudgetExceededError`` before they run. The call that crosses the
            limit is recorded and returns its result.
        reset: ``None`` (the budget never resets), ``"daily"``, ``"weekly"`` (ISO weeks)
            or ``"monthly"``, on the UTC calendar.
        rate_limit: requests per minute allowed through this function.
        tpm_limit: tokens per minute allowed through this function.
        extract_usage: ``callable(response)`` returning ``(model, input_tokens,
            output_tokens)``, a dict or a ``Usage``; when given it wins over auto-detection.
            For streams it is called with each chunk.
        budget_key: ``callable(*args, **kwargs)`` of the decorated call's arguments returning
            the call's budget key (a tenant, a user: a ``str``), or None for no key. It is
            recorded with the call and set on its span as ``llm_toll.budget.key``.
        key_budget: USD. Each budget key's own budget, over the same ``reset`` period, on
            top of ``max_budget``: a call is refused when either is spent. Needs
            ``budget_key``.
        key_in_metrics: put the budget key on the ``llm_toll.cost`` counter and the budget
            gauges (one series per key: mind the cardinality). Off by default.
        strict: never spend past ``max_budget``, ``key_budget`` or ``max_run_cost``, even
            with many calls in flight: each provider request reserves its worst case in the
            store before it is sent (its input bounded from the request's body, its output
            by the request's cap, lowered to what the budget has left when needed) and
            settles it to the real cost when it is recorded. A request whose worst case
            cannot be bounded is refused. A call that makes no request llm_toll can see
            reserves the worst case of its arguments (``estimate``, or the prompt and
            ``max_tokens`` they hold) or, when that is unknown, gets the plain check with a
            warning.
        estimate: ``callable(*args, **kwargs)`` of the call's arguments returning its
            worst-case cost in USD, for ``strict``.
        wait: when ``rate_limit`` or ``tpm_limit`` refuses a call, wait its
            ``retry_after`` (``time.sleep`` in sync code, ``asyncio.sleep`` in async code)
            and try again until it is admitted, instead of raising ``LocalRateLimitError``.
        shared_limits: check ``rate_limit`` and ``tpm_limit`` in the store (one atomic
            transaction per call) rather than in this process, so every process (or host,
            on PostgreSQL) using the store honours one limit per project and function.
        max_run_cost: USD. The cap of each call (each run): once the provider requests it
            made have spent it, its next request is refused before it is sent.
        clamp: with ``strict``, lower a request's output cap (or set one, when it has
            none) to what the budget has left. ``clamp=False`` refuses such requests
            instead of changing them.
        on_store_error: when the budget store cannot be read (or, with ``strict``, cannot
            reserve) before a call: ``"allow"`` lets the call go ahead without the check,
            with an ``AccountingWarning``; ``"refuse"`` raises ``BudgetExceededError``
            (``scope="store"``, the reason in its message) before anything is sent. The
            default is ``"allow"``, and ``"refuse"`` with ``strict``.
        on_unpriced: when the model a request asks for (``model=``, or the ``model`` of a
            request a hooked SDK is about to send) has no known price (no genai-prices
            entry, override, local prefix or fallback price): ``"warn"`` (the default)
            sends it and records its tokens at $0 with a ``PricingMatrixOutdatedWarning``;
            ``"refuse"`` raises ``UnpricedModelError`` (a ``BudgetExceededError``) before
            it is sent.
        on_threshold: ``callable(alert)``, called once per crossing of 50, 80 and 100 % of
            a budget (``max_budget``, ``key_budget``) in a period, across every process
            sharing the store, with an :class:`llm_toll.alerts.Alert`. Called in
            llm_toll's alert thread, never in the calling thread or on an event loop; an
            exception it raises is warned about once.
        on_exceeded: ``callable(alert)``, the same for the call that takes a budget's
            spend to its limit or past it, and for the first call of a period that the
            spent budget refuses (``alert.refused``).
        alert_webhook: an ``http(s)://`` URL (a Slack incoming webhook, or any receiver
            of Slack's JSON) that each alert is POSTed to, with retries; without it,
            ``LLM_TOLL_ALERT_WEBHOOK``'s URL, if set.
    """
    options = plan_options(
        project=project,
        model=model,
        max_budget=max_budget,
        reset=reset,
        rate_limit=rate_limit,
        tpm_limit=tpm_limit,
        extract_usage=extract_usage,
        budget_key=budget_key,
        key_budget=key_budget,
        key_in_metrics=key_in_metrics,
        strict=strict,
        estimate=estimate,
        wait=wait,
        shared_limits=shared_limits,
        max_run_cost=max_run_cost,
        clamp=clamp,
        on_store_error=on_store_error,
        on_unpriced=on_unpriced,
        on_threshold=on_threshold,
        on_exceeded=on_exceeded,
        alert_webhook=alert_webhook,
    )
    check_store_environment()

    def decorate(func: F) -> F:
        name = getattr(func, "__qualname__", repr(func))
        return shapes.wrap(func, Plan(name=name, cost_arguments=cost_arguments(func), **options))

    return decorate if fn is None else decorate(fn)


def plan_options(
    *,
    project: str = "default",
    model: str | None = None,
    max_budget: float | None = None,
    reset: Reset | None = None,
    rate_limit: int | None = None,
    tpm_limit: int | None = None,
    extract_usage: Callable[[Any], Any] | None = None,
    budget_key: Callable[..., str | None] | None = None,
    key_budget: float | None = None,
    key_in_metrics: bool = False,
    strict: bool = False,
    estimate: Callable[..., float] | None = None,
    wait: bool = False,
    shared_limits: bool = False,
    max_run_cost: float | None = None,
    clamp: bool = True,
    on_store_error: StoreErrorPolicy | None = None,
    on_unpriced: UnpricedPolicy = "warn",
    on_threshold: AlertCallback | None = None,
    on_exceeded: AlertCallback | None = None,
    alert_webhook: str | None = None,
) -> dict[str, Any]:
    """The options of ``track_costs`` (and of ``llm_toll.run``, ``instrument`` and the
    framework callbacks) checked, as the fields of a Plan; a ValueError names the option
    that is wrong (``llm_toll._options``: one check per kind of value)."""
    text_option("project", project, required=True)
    text_option("model", model)
    limit = usd_option("max_budget", max_budget)
    key_limit = usd_option("key_budget", key_budget)
    run_cap = usd_option("max_run_cost", max_run_cost)
    count_option("rate_limit", rate_limit)
    count_option("tpm_limit", tpm_limit)
    validate_reset(reset)
    if budget_key is not None and not callable(budget_key):
        raise ValueError(
            f"budget_key must be a callable of the call's arguments, got {budget_key!r}"
        )
    if key_budget is not None and budget_key is None:
        raise ValueError("key_budget needs budget_key= to tell which key a call belongs to")
    if not isinstance(strict, bool):
        raise ValueError(f"strict must be True or False, got {strict!r}")
    if estimate is not None and not callable(estimate):
        raise ValueError(f"estimate must be a callable of the call's arguments, got {estimate!r}")
    if estimate is not None and not strict:
        raise ValueError("estimate= is the worst case of strict=True budgets; pass strict=True")
    if strict and max_budget is None and key_budget is None and max_run_cost is None:
        raise ValueError(
            "strict=True needs max_budget=, key_budget= or a run cap to reserve against"
        )
    if not isinstance(clamp, bool):
        raise ValueError(f"clamp must be True or False, got {clamp!r}")
    if not clamp and not strict:
        raise ValueError("clamp= says how strict=True budgets bound a request; pass strict=True")
    if not isinstance(wait, bool):
        raise ValueError(f"wait must be True or False, got {wait!r}")
    if wait and rate_limit is None and tpm_limit is None:
        raise ValueError("wait=True waits out rate limits; pass rate_limit= or tpm_limit=")
    if not isinstance(shared_limits, bool):
        raise ValueError(f"shared_limits must be True or False, got {shared_limits!r}")
    if shared_limits and rate_limit is None and tpm_limit is None:
        raise ValueError("shared_limits=True shares rate limits; pass rate_limit= or tpm_limit=")
    if not isinstance(key_in_metrics, bool):
        raise ValueError(f"key_in_metrics must be True or False, got {key_in_metrics!r}")
    policy = store_error_option(on_store_error, strict=strict)
    unpriced = unpriced_option(on_unpriced)
    alerts = alert_options(on_threshold, on_exceeded, alert_webhook)
    limiter = (
        RateLimiter(rpm=rate_limit, tpm=tpm_limit)
        if rate_limit is not None or tpm_limit is not None
        else None
    )
    budget = BudgetSpec(limit, reset) if max_budget is not None or reset is not None else None
    key_spec = None if key_limit is None else BudgetSpec(key_limit, reset)
    return {
        "project": project,
        "model": model,
        "budget": budget,
        "limiter": limiter,
        "extract_usage": extract_usage,
        "budget_key": budget_key,
        "key_budget": key_spec,
        "key_in_metrics": key_in_metrics,
        "strict": strict,
        "estimate": estimate,
        "wait": wait,
        "shared_limits": shared_limits,
        "max_run_cost_nanos": run_cap,
        "clamp": clamp,
        "on_store_error": policy,
        "on_unpriced": unpriced,
        "alerts": alerts,
    }


def store_error_option(value: object, *, strict: bool = False) -> StoreErrorPolicy:
    """``on_store_error`` checked; None is the default: ``"refuse"`` for strict budgets
    (which never fall back to an unchecked call unless told to), else ``"allow"``."""
    if value is None:
        return "refuse" if strict else "allow"
    for policy in STORE_ERROR_POLICIES:
        if value == policy and isinstance(value, str):
            return policy
    raise ValueError(f"on_store_error must be 'allow' or 'refuse', got {value!r}")


def unpriced_option(value: object) -> UnpricedPolicy:
    """``on_unpriced`` checked: ``"warn"`` or ``"refuse"``."""
    for policy in UNPRICED_POLICIES:
        if value == policy and isinstance(value, str):
            return policy
    raise ValueError(f"on_unpriced must be 'warn' or 'refuse', got {value!r}")
