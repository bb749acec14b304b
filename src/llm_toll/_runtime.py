"""Process-wide state: the store, the reporter and the writer (``CostSpanProcessor``).

Everything is created on first use, so importing llm_toll costs nothing, and reset after
``os.fork()`` so a child process never shares a connection or a thread with its parent.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import TYPE_CHECKING

from llm_toll._worker import worker
from llm_toll.store import STORE_URL_ENV, BaseStore, create_store
from llm_toll.telemetry import providers

if TYPE_CHECKING:
    from llm_toll._budget.writer import CostSpanProcessor
    from llm_toll.reporter import CostReporter

_lock = threading.Lock()
_store: BaseStore | None = None
_reporter: CostReporter | None = None
_writer: CostSpanProcessor | None = None


def get_store() -> BaseStore:
    global _store
    store = _store
    if store is not None:
        return store
    with _lock:
        if _store is None:
            url = os.environ.get(STORE_URL_ENV) or None
            try:
                store = create_store(url)
            except Exception as exc:
                warnings.warn(
                    f"llm_toll could not open the store {STORE_URL_ENV}={url!r} ({exc}); "
                    "falling back to the local SQLite store.",
                    stacklevel=2,
                )
                store = create_store(None)
            store.set_write_barrier(worker.wait_idle)
            _store = store
        return _store


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
