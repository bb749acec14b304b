"""Warnings given once per cause, so a failing dependency cannot flood the app's logs; and
the guard that turns a failure after a paid call into such a warning."""

from __future__ import annotations

import threading
import warnings
from types import TracebackType

_seen: set[tuple[type[Warning], str]] = set()
_lock = threading.Lock()


def warn_once(cause: str, message: str, category: type[Warning], stacklevel: int = 3) -> None:
    """Warn with ``message`` unless a warning of ``category`` was already given for ``cause``."""
    key = (category, cause)
    with _lock:
        if key in _seen:
            return
        _seen.add(key)
    warnings.warn(message, category, stacklevel=stacklevel)


def forget_warnings() -> None:
    """Allow every warning to be given again (for tests and long-lived reconfiguration)."""
    with _lock:
        _seen.clear()


def raise_if_warning(exc: Exception) -> None:
    """A warning that the app's filters turned into an error is the app's to see, not a
    failure of llm_toll's: it goes on up."""
    if isinstance(exc, Warning):
        raise exc


class Guard:
    """Guards a block after a paid call: an exception in it is a warning of ``category``
    (once per cause and type of exception), never an exception in the app's call; a
    warning the app's filters turned into an error goes on up. Holds no state of a call,
    so one guard serves every call, in every thread.

    ``what`` completes "llm_toll could not ...": "record a call", "end a span"...
    """

    __slots__ = ("category", "cause", "what")

    def __init__(self, cause: str, what: str, category: type[Warning]) -> None:
        self.cause = cause
        self.what = what
        self.category = category

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if not isinstance(exc, Exception) or isinstance(exc, Warning):
            return False
        warn_once(f"{self.cause}:{type(exc).__name__}",
                  f"llm_toll could not {self.what} ({shown(exc)}).", self.category)  # fmt: skip
        return True


def shown(value: object) -> str:
    """``value`` as a message shows it: short, and never raising (a garbage object's
    ``repr`` may raise; an int of 5,000 digits cannot be printed)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else f"{text[:197]}..."
