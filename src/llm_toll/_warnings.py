"""Warnings given once per cause, so a failing dependency cannot flood the app's logs."""

from __future__ import annotations

import threading
import warnings

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
