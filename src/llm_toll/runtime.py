"""Process-wide state: the store, the reporter, the processor and the worker threads.

Everything is created lazily on first use, so importing llm_toll costs nothing, and reset
after ``os.fork()`` so a child process never shares a connection or a thread with its parent.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

from llm_toll import telemetry
from llm_toll.processor import CostSpanProcessor
from llm_toll.reporter import CostReporter, reporter_from_env
from llm_toll.store import BaseStore, create_store

# Store writes serialise on one connection, so more threads would only queue.
_WORKERS = 2

_lock = threading.Lock()
_store: BaseStore | None = None
_reporter: CostReporter | None = None
_executor: ThreadPoolExecutor | None = None


def get_store() -> BaseStore:
    global _store
    store = _store
    if store is not None:
        return store
    with _lock:
        if _store is None:
            url = os.environ.get("LLM_TOLL_STORE_URL") or None
            try:
                _store = create_store(url)
            except Exception as exc:
                warnings.warn(
                    f"llm_toll could not open the store LLM_TOLL_STORE_URL={url!r} ({exc}); "
                    "falling back to the local SQLite store.",
                    stacklevel=2,
                )
                _store = create_store(None)
        return _store


def set_store(store: BaseStore | None) -> None:
    """Use ``store`` for all decorated calls; ``None`` goes back to the default store."""
    global _store
    with _lock:
        _store = store
    processor.view.clear()


def get_reporter() -> CostReporter:
    global _reporter
    reporter = _reporter
    if reporter is not None:
        return reporter
    with _lock:
        if _reporter is None:
            _reporter = reporter_from_env()
        return _reporter


def set_reporter(reporter: CostReporter | None) -> None:
    """Use ``reporter`` for per-call cost lines; ``None`` goes back to the default."""
    global _reporter
    with _lock:
        _reporter = reporter


def executor() -> ThreadPoolExecutor:
    """Worker threads for store I/O and span ends of async calls, off the event loop."""
    global _executor
    pool = _executor
    if pool is not None:
        return pool
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="llm_toll")
        return _executor


processor = CostSpanProcessor(get_store, get_reporter)
telemetry.set_processor_factory(lambda: processor)


def _after_fork_in_child() -> None:
    global _executor
    _executor = None  # the parent's threads do not exist in the child
    processor.view.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
