"""The shapes of a decorated call: plain and async functions, generators, async generators,
and functions that return a stream. Each drives one ``Call`` from admission to record."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar

from llm_toll._call.call import Call
from llm_toll._call.gates import admit, admit_async
from llm_toll._call.plan import Plan
from llm_toll._call.streams import (
    AsyncStreamProxy,
    StreamMeter,
    SyncStreamProxy,
    is_async_stream,
    is_sync_stream,
)
from llm_toll._worker import worker
from llm_toll.pricing._routes import preload

F = TypeVar("F", bound=Callable[..., Any])


def wrap(func: F, plan: Plan) -> F:
    """``func`` wrapped for its shape, found now, at decoration time."""
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


def _function(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    def call_function(*args: Any, **kwargs: Any) -> Any:
        call = Call(plan, args, kwargs, admit(plan, args, kwargs))
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
        call = Call(plan, args, kwargs, await admit_async(plan, args, kwargs))
        token = call.attach()
        try:
            result = await func(*args, **kwargs)
        except BaseException as error:
            call.detach(token)
            worker.submit(call.fail, error)
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
        call = Call(plan, args, kwargs, admit(plan, args, kwargs))
        meter = StreamMeter(call)
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
                meter.feed(item)
                sent = yield item
        except BaseException as raised:
            # GeneratorExit: the consumer stopped early; record what it saw, as a success.
            error = None if isinstance(raised, GeneratorExit) else raised
            raise
        finally:
            inner.close()
            meter.finish(error)

    return call_generator


def _async_generator(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    async def call_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        call = Call(plan, args, kwargs, await admit_async(plan, args, kwargs))
        meter = StreamMeter(call)
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
                meter.feed(item)
                sent = yield item
        except BaseException as raised:
            error = None if isinstance(raised, GeneratorExit) else raised
            raise
        finally:
            await inner.aclose()
            await meter.finish_async(error)

    return call_async_generator
