"""Process-wide state: the store, the reporter and the writer (``CostSpanProcessor``).

Everything is created on first use, so importing llm_toll costs nothing, and reset after
``os.fork()`` so a child process never shares a connection or a thread with its parent.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from llm_toll._worker import worker
from llm_toll.store import STORE_URL_ENV, BaseStore, check_store_url, create_store
from llm_toll.telemetry import _providers as providers

if TYPE_CHECKING:
    from llm_toll._budget.writer import CostSpanProcessor
    from llm_toll.reporter import CostReporter

_lock = threading.Lock()
_store: BaseStore | None = None
_reporter: CostReporter | None = None
_writer: CostSpanProcessor | None = None
_checked_url: str | None = None  # the last LLM_TOLL_STORE_URL found usable


def get_store() -> BaseStore:
    global _store
    store = _store
    if store is not None:
        return store
    with _lock:
        if _store is None:
            store = _store_from_environment()
            store.set_write_barrier(worker.wait_idle)
            _store = store
        return _store


def _store_from_environment() -> BaseStore:
    url = os.environ.get(STORE_URL_ENV) or None
    try:
        return create_store(url)
    except (ValueError, ImportError) as exc:
        # Never another database than the one asked for (a fleet meant to share one budget
        # would get one per host): calls go on as with a store that is down, warned.
        # Decorating already refused such a URL (check_store_environment); this is a URL
        # set after that.
        from llm_toll.store._unusable import UnusableStore

        return UnusableStore(f"llm_toll cannot use its store: {exc}")


def check_store_environment() -> None:
    """Raise ValueError when ``LLM_TOLL_STORE_URL`` names no store this process can use,
    before anything is sent (when a function is decorated, a run or callback is made), unless
    a store is in use already. Nothing is opened: its form and scheme are checked, and a
    PostgreSQL connection string parsed."""
    global _checked_url
    url = os.environ.get(STORE_URL_ENV) or None
    if url is None or url == _checked_url or _store is not None:
        return
    try:
        check_store_url(url)
    except ValueError as exc:
        raise ValueError(f"{STORE_URL_ENV}: {exc}") from None
    _checked_url = url


def set_store(store: BaseStore | None) -> None:
    """Use ``store`` for all decorated calls; ``None`` goes back to the default store."""
    global _store
    if store is not None:
        store.set_write_barrier(worker.wait_idle)
    with _lock:
        _store = store
    if _writer is not None:
        _writer.view.clear()


def get_reporter() -> CostReporter:
    global _reporter
    reporter = _reporter
    if reporter is not None:
        return reporter
    with _lock:
        if _reporter is None:
            from llm_toll.reporter import reporter_from_env

            _reporter = reporter_from_env()
        return _reporter


def set_reporter(reporter: CostReporter | None) -> None:
    """Use ``reporter`` for per-call cost lines; ``None`` goes back to the default."""
    global _reporter
    with _lock:
        _reporter = reporter


def writer() -> CostSpanProcessor:
    """The process's one writer, created at the first call (it brings the OpenTelemetry
    SDK's span processor class, which ``import llm_toll`` does not need)."""
    global _writer
    current = _writer
    if current is not None:
        return current
    with _lock:
        if _writer is None:
            from llm_toll._budget.writer import CostSpanProcessor

            _writer = CostSpanProcessor(get_store, get_reporter)
        return _writer


providers.set_processor_factory(writer)


def _after_fork_in_child() -> None:
    if _writer is not None:
        _writer.view.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
