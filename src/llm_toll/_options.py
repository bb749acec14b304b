"""Options checked where they are given (a decorator, a run, a callback, ``setup_telemetry``,
a store's constructor): one check per kind of value, each a ValueError that names the option.

Checked there, a wrong value is found before anything is sent or spent, rather than when a
call's record cannot be written.
"""

from __future__ import annotations

import math
import threading

from llm_toll.store._checks import MAX_INTEGER, MAX_USD, usd_to_nanos_checked

MAX_SECONDS = threading.TIMEOUT_MAX
"""The longest timeout the threads and locks that wait on one accept."""


def usd_option(name: str, value: object, *, required: bool = False) -> int | None:
    """A USD amount in nano-USD: finite, non-negative, and no more than the store holds (a
    signed 64-bit count of nano-USD)."""
    if _absent(name, value, required):
        return None
    nanos = usd_to_nanos_checked(value)
    if nanos is not None:
        return nanos
    number = _finite_number(value)
    if number is not None and number > 0:
        raise ValueError(
            f"{name} must be at most {MAX_USD} USD (the most the store can hold), got {value!r}"
        )
    raise ValueError(f"{name} must be a finite, non-negative number of USD, got {value!r}")


def count_option(
    name: str, value: object, *, minimum: int = 1, required: bool = False
) -> int | None:
    """A whole number (requests, tokens, connections, milliseconds) from ``minimum`` to the
    largest the store holds."""
    if _absent(name, value, required):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    if value > MAX_INTEGER:
        raise ValueError(f"{name} must be at most {MAX_INTEGER}, got {value!r}")
    return value


def seconds_option(
    name: str, value: object, *, allow_zero: bool = False, required: bool = False
) -> float | None:
    """A duration in seconds: finite, positive (or zero when ``allow_zero``), and no longer
    than a thread can wait."""
    if _absent(name, value, required):
        return None
    seconds = _finite_number(value)
    lowest = 0.0 if allow_zero else math.ulp(0.0)  # the smallest float above 0
    if seconds is not None and lowest <= seconds <= MAX_SECONDS:
        return seconds
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(
        f"{name} must be a finite number of seconds {bound} and at most {MAX_SECONDS:g}, "
        f"got {value!r}"
    )


def text_option(name: str, value: object, *, required: bool = False) -> str | None:
    """A name: a non-empty string."""
    if _absent(name, value, required):
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _absent(name: str, value: object, required: bool) -> bool:
    if value is not None:
        return False
    if required:
        raise ValueError(f"{name} is required, got None")
    return True


def _finite_number(value: object) -> float | None:
    """``value`` as a float when it is a finite number (a bool is not one); else None."""
    from decimal import Decimal  # imported already: money is kept in decimals

    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):  # an int too large for a float; a signalling NaN
        return None
    return number if math.isfinite(number) else None
