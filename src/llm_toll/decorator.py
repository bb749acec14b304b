"""``@track_costs``: pick the call shape at decoration time and drive each call through it."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, overload

from llm_toll import runtime
from llm_toll.budget import validate_reset
from llm_toll.calls import Plan, begin, begin_async
from llm_toll.money import usd_to_nanos
from llm_toll.pricing_genai import preload
from llm_toll.rate_limiter import RateLimiter
from llm_toll.records import BudgetSpec
from llm_toll.runtime import set_reporter, set_store
from llm_toll.streams import (
    AsyncStreamProxy,
    StreamSettlement,
    SyncStreamProxy,
    is_async_stream,
    is_sync_stream,
)

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
    reset: str | None = None,
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
) -> Callable[[F], F]: ...


def track_costs(
    fn: F | None = None,
    *,
    project: str = "default",
    model: str | None = None,
    max_budget: float | None = None,
    reset: str | None = None,
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
) -> F | Callable[[F], F]:
    """Track the cost of every call of the decorated function and enforce its budget.

    Works on sync and async functions, generator and async generator functions, and
    functions that return an SDK stream. Each call becomes an OpenTelemetry span with
    GenAI usage and cost attributes, and is recorded in the budget store.

    Args:
        project: the budget scope calls are recorded under.
        model: the model name to price with, instead of the one the response reports.
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
        strict: reserve each call's worst-case cost in the store before it runs, and refuse
            the call when spent + reserved + that worst case would exceed ``max_budget``
            (or ``key_budget``); the reservation is settled to the actual cost afterwards.
            The worst case is ``estimate`` if given, else the prompt's estimated tokens
            plus the request's output-token cap (``max_tokens`` & co.) at the model's price;
            a call whose worst case is unknown gets the plain check, with a warning.
        estimate: ``callable(*args, **kwargs)`` of the call's arguments returning its
            worst-case cost in USD, for ``strict``.
        wait: when ``rate_limit`` or ``tpm_limit`` refuses a call, wait its
            ``retry_after`` (``time.sleep`` in sync code, ``asyncio.sleep`` in async code)
            and try again until it is admitted, instead of raising ``LocalRateLimitError``.
        shared_limits: check ``rate_limit`` and ``tpm_limit`` in the store (one atomic
            transaction per call) rather than in this process, so every process (or host,
            on PostgreSQL) using the store honours one limit per project and function.
    """
    if not isinstance(project, str) or not project:
        raise ValueError(f"project must be a non-empty string, got {project!r}")
    if max_budget is not None and (
        isinstance(max_budget, bool) or not isinstance(max_budget, (int, float)) or max_budget < 0
    ):
        raise ValueError(f"max_budget must be a non-negative number of USD, got {max_budget!r}")
    validate_reset(reset)
    if budget_key is not None and not callable(budget_key):
        raise ValueError(
            f"budget_key must be a callable of the call's arguments, got {budget_key!r}"
        )
    if key_budget is not None:
        if (
            isinstance(key_budget, bool)
            or not isinstance(key_budget, (int, float))
            or not 0 <= key_budget < math.inf
        ):
            raise ValueError(f"key_budget must be a non-negative number of USD, got {key_budget!r}")
        if budget_key is None:
            raise ValueError("key_budget needs budget_key= to tell which key a call belongs to")
    if not isinstance(strict, bool):
        raise ValueError(f"strict must be True or False, got {strict!r}")
    if estimate is not None and not callable(estimate):
        raise ValueError(f"estimate must be a callable of the call's arguments, got {estimate!r}")
    if estimate is not None and not strict:
        raise ValueError("estimate= is the worst case of strict=True budgets; pass strict=True")
    if strict and max_budget is None and key_budget is None:
        raise ValueError("strict=True needs max_budget= or key_budget= to reserve against")
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
    limiter = (
        RateLimiter(rpm=rate_limit, tpm=tpm_limit)
        if rate_limit is not None or tpm_limit is not None
        else None
    )
    budget = (
        BudgetSpec(None if max_budget is None else usd_to_nanos(max_budget), reset)
        if max_budget is not None or reset is not None
        else None
    )
    key_spec = None if key_budget is None else BudgetSpec(usd_to_nanos(key_budget), reset)

    def decorate(func: F) -> F:
        plan = Plan(
            name=getattr(func, "__qualname__", repr(func)),
            project=project,
            model=model,
            budget=budget,
            limiter=limiter,
            extract_usage=extract_usage,
            budget_key=budget_key,
            key_budget=key_spec,
            key_in_metrics=key_in_metrics,
            strict=strict,
            estimate=estimate,
            wait=wait,
            shared_limits=shared_limits,
        )
        if inspect.isasyncgenfunction(func) or inspect.iscoroutinefunction(func):
            # Async calls price on the event loop: load genai-prices' data now, not in the
            # middle of a run.
            preload()
        if inspect.isasyncgenfunction(func):
            wrapper: Callable[..., Any] = _async_generator(func, plan)
        elif inspect.iscoroutinefunction(func):
            wrapper = _coroutine(func, plan)
        elif inspect.isgeneratorfunction(func):
            wrapper = _generator(func, plan)
        else:
            wrapper = _function(func, plan)
        return functools.wraps(func)(wrapper)  # type: ignore[return-value]

    return decorate if fn is None else decorate(fn)


def _function(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    def call_function(*args: Any, **kwargs: Any) -> Any:
        call = begin(plan, args, kwargs)
        token = call.attach()
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        if is_sync_stream(result):
            return SyncStreamProxy(result, call)
        if is_async_stream(result):
            return AsyncStreamProxy(result, call)
        call.finish(result)
        return result

    return call_function


def _coroutine(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    async def call_coroutine(*args: Any, **kwargs: Any) -> Any:
        call = await begin_async(plan, args, kwargs)
        token = call.attach()
        try:
            result = await func(*args, **kwargs)
        except BaseException as error:
            call.detach(token)
            runtime.worker.submit(call.fail, error)
            raise
        call.detach(token)
        if is_async_stream(result):
            return AsyncStreamProxy(result, call)
        if is_sync_stream(result):
            return SyncStreamProxy(result, call)
        await call.finish_async(result)
        return result

    return call_coroutine


def _generator(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    def call_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        call = begin(plan, args, kwargs)
        settlement = StreamSettlement(call)
        error: BaseException | None = None
        inner = func(*args, **kwargs)
        try:
            sent = None
            while True:
                token = call.attach()
                try:
                    item = inner.send(sent)
                except StopIteration as stop:
                    return stop.value
                finally:
                    call.detach(token)
                settlement.feed(item)
                sent = yield item
        except BaseException as raised:
            # GeneratorExit: the consumer stopped early; settle what it saw, as a success.
            error = None if isinstance(raised, GeneratorExit) else raised
            raise
        finally:
            inner.close()
            settlement.settle(error)

    return call_generator


def _async_generator(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    async def call_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        call = await begin_async(plan, args, kwargs)
        settlement = StreamSettlement(call)
        error: BaseException | None = None
        inner = func(*args, **kwargs)
        try:
            sent = None
            while True:
                token = call.attach()
                try:
                    item = await inner.asend(sent)
                except StopAsyncIteration:
                    return
                finally:
                    call.detach(token)
                settlement.feed(item)
                sent = yield item
        except BaseException as raised:
            error = None if isinstance(raised, GeneratorExit) else raised
            raise
        finally:
            await inner.aclose()
            await settlement.settle_async(error)

    return call_async_generator
