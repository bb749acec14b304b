"""Warnings given once per cause, so a failing dependency cannot flood the app's logs; and
the guard that turns a failure after a paid call into such a warning."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

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


@contextlib.contextmanager
def warned_instead(cause: str, what: str, category: type[Warning]) -> Iterator[None]:
    """Run the block; an exception in it is a warning (once per cause and type of
    exception), never an exception in the app's call. ``what``: "record a call"..."""
    try:
        yield
    except Exception as exc:
        raise_if_warning(exc)
        warn_once(f"{cause}:{type(exc).__name__}", f"llm_toll could not {what} ({shown(exc)}).",
                  category, stacklevel=4)  # fmt: skip


def shown(value: object) -> str:
    """``value`` as a message shows it: short, and never raising (a garbage object's
    ``repr`` may raise; an int of 5,000 digits cannot be printed)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else f"{text[:197]}..."
