"""The shapes of a decorated call: plain and async functions, generators, async generators,
and functions that return a stream. Each call is a run: admitted, made current while the
function's code runs (so that the provider requests it makes are gated and recorded in it),
then ended. A run that made no hooked request records its function's return value instead,
as one request (the ``Call`` of ``run.fallback_call()``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar

from llm_toll import _hooks
from llm_toll._call.call import Call
from llm_toll._call.gates import Admission, admit, admit_async
from llm_toll._call.plan import Plan
from llm_toll._call.run import Run
from llm_toll._call.streams import StreamMeter, is_async_stream, is_sync_stream
from llm_toll._worker import worker
from llm_toll.pricing._routes import preload

F = TypeVar("F", bound=Callable[..., Any])


def wrap(func: F, plan: Plan) -> F:
    """``func`` wrapped for its shape, found now, at decoration time."""
    _hooks.ensure_installed()
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


def _start(plan: Plan, admission: Admission, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
    return Run(
        plan,
        admission,
        name=plan.name,
        args=args,
        kwargs=kwargs,
        max_cost_nanos=plan.max_run_cost_nanos,
    )


def _function(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    def call_function(*args: Any, **kwargs: Any) -> Any:
        run = _start(plan, admit(plan, args, kwargs), args, kwargs)
        tokens = run.enter()
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            run.exit(tokens)
            _failed(run, error)
            raise
        run.exit(tokens)
        if run.requests:  # its requests were hooked and recorded: nothing more to record
            run.release_unused()
            run.end()
            return result
        call = run.fallback_call()  # no hooked request: the return value is the request
        if is_sync_stream(result) or is_async_stream(result):
            return _stream_proxy(result, call, prefer_async=False)
        call.finish(result)
        return result

    return call_function


def _coroutine(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    async def call_coroutine(*args: Any, **kwargs: Any) -> Any:
        run = _start(plan, await admit_async(plan, args, kwargs), args, kwargs)
        tokens = run.enter()
        try:
            result = await func(*args, **kwargs)
        except BaseException as error:
            run.exit(tokens)
            worker.submit(_failed, run, error)
            raise
        run.exit(tokens)
        if run.requests:
            run.release_unused()
            worker.submit(run.end)
            return result
        call = run.fallback_call()
        if is_async_stream(result) or is_sync_stream(result):
            return _stream_proxy(result, call, prefer_async=True)
        await call.finish_async(result)
        return result

    return call_coroutine


def _stream_proxy(stream: Any, call: Call, *, prefer_async: bool) -> Any:
    """A returned stream, metered as it is read; a stream that is both sync and async is
    read the way the function is (``prefer_async`` for a coroutine function)."""
    from llm_toll._call import proxies  # with wrapt, when a first stream needs one

    if is_async_stream(stream) and (prefer_async or not is_sync_stream(stream)):
        return proxies.AsyncStreamProxy(stream, call)
    return proxies.SyncStreamProxy(stream, call)


def _failed(run: Run, error: BaseException) -> None:
    """The function raised. Without a hooked request, it is a failed call of its own (its
    span, the failure metric, its reservation and rate lease given back)."""
    if run.requests:
        run.release_unused()
        run.end(error)
    else:
        run.fallback_call().fail(error)


def _generator(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    def call_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        run = _start(plan, admit(plan, args, kwargs), args, kwargs)
        meter = StreamMeter(plan)
        error: BaseException | None = None
        inner = func(*args, **kwargs)
        try:
            sent = None
            while True:
                tokens = run.enter()
                try:
                    item = inner.send(sent)
                except StopIteration as stop:
                    return stop.value
                finally:
                    run.exit(tokens)
                meter.feed(item)
                sent = yield item
        except BaseException as raised:
            # GeneratorExit: the consumer stopped early; record what it saw, as a success.
            error = None if isinstance(raised, GeneratorExit) else raised
            raise
        finally:
            inner.close()
            if run.requests:
                run.release_unused()
                run.end(error)
            else:
                meter.call = run.fallback_call()
                meter.finish(error)

    return call_generator


def _async_generator(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    async def call_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        run = _start(plan, await admit_async(plan, args, kwargs), args, kwargs)
        meter = StreamMeter(plan)
        error: BaseException | None = None
        inner = func(*args, **kwargs)
        try:
            sent = None
            while True:
                tokens = run.enter()
                try:
                    item = await inner.asend(sent)
                except StopAsyncIteration:
                    return
                finally:
                    run.exit(tokens)
                meter.feed(item)
                sent = yield item
        except BaseException as raised:
            error = None if isinstance(raised, GeneratorExit) else raised
            raise
        finally:
            await inner.aclose()
            if run.requests:
                run.release_unused()
                worker.submit(run.end, error)
            else:
                meter.call = run.fallback_call()
                await meter.finish_async(error)

    return call_async_generator
