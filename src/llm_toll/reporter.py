"""One line per call and a session total, printed to the terminal (stderr by default).

Colours follow https://no-color.org/: none when ``NO_COLOR`` is set to a non-empty value.
Unlike llm-toll 0.13, colours are also left out when the output is not a terminal (a file,
a pipe, a log collector), so redirected output stays free of escape codes, unless
``FORCE_COLOR`` (https://force-color.org/) or ``CLICOLOR_FORCE`` asks for them, as for a CI
log that shows them; ``NO_COLOR`` still wins.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import IO

from llm_toll._budget.money import nanos_to_decimal, usd_to_nanos

REPORT_ENV = "LLM_TOLL_REPORT"
_TRUE_VALUES = frozenset({"1", "true", "yes"})
_FALSE_VALUES = frozenset({"", "0", "false", "no"})

_CYAN = "36"
_GREEN = "32"
_YELLOW = "33"
_RED = "31"
_BOLD = "1"

_ONE_CENT = usd_to_nanos("0.01")
_TEN_CENTS = usd_to_nanos("0.10")
_MIN_PLACES = 4


@dataclass(frozen=True, slots=True)
class SessionTotals:
    """What a reporter has seen since it was created or last reset."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0


class CostReporter:
    """Prints per-call costs and a session summary, keeping exact session totals.

    Session totals are kept even when the reporter is disabled, so enabling it later or
    reading :attr:`totals` still gives the whole session.
    """

    def __init__(self, *, enabled: bool = True, file: IO[str] | None = None) -> None:
        self._enabled = enabled
        self._file = file
        self._totals = SessionTotals()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def totals(self) -> SessionTotals:
        return self._totals

    def report_call(
        self, model: str, input_tokens: int, output_tokens: int, cost: float | Decimal
    ) -> None:
        """Add one call to the session and print ``[cost] model: N in / M out -> $X``."""
        _check_tokens("input_tokens", input_tokens)
        _check_tokens("output_tokens", output_tokens)
        cost_nanos = _cost_to_nanos(cost)
        with self._lock:
            totals = self._totals
            self._totals = SessionTotals(
                calls=totals.calls + 1,
                input_tokens=totals.input_tokens + input_tokens,
                output_tokens=totals.output_tokens + output_tokens,
                cost_nanos=totals.cost_nanos + cost_nanos,
            )
        if not self._enabled:
            return
        colour = self._colour_on()
        shown_cost = _paint(format_usd(cost_nanos), _cost_colour(cost_nanos), colour)
        self._write(
            f"[cost] {_paint(model, _CYAN, colour)}: "
            f"{input_tokens:,} in / {output_tokens:,} out -> {shown_cost}"
        )

    def report_session(self) -> None:
        """Print ``[session] N calls, X in / Y out, total $Z``; nothing if no call was seen."""
        totals = self._totals
        if not self._enabled or totals.calls == 0:
            return
        colour = self._colour_on()
        shown_total = _paint(
            format_usd(totals.cost_nanos), f"{_BOLD};{_cost_colour(totals.cost_nanos)}", colour
        )
        self._write(
            f"[session] {totals.calls} calls, "
            f"{totals.input_tokens:,} in / {totals.output_tokens:,} out, total {shown_total}"
        )

    def reset(self) -> None:
        """Start a new session: zero all totals."""
        with self._lock:
            self._totals = SessionTotals()

    def _stream(self) -> IO[str]:
        # Looked up at write time so a replaced sys.stderr (tests, daemons) is honoured.
        return self._file if self._file is not None else sys.stderr

    def _colour_on(self) -> bool:
        return colour_wanted(self._stream())

    def _write(self, line: str) -> None:
        print(line, file=self._stream(), flush=True)


def reporter_from_env() -> CostReporter:
    """A reporter to stderr, enabled only when ``LLM_TOLL_REPORT`` is 1, true or yes."""
    raw = os.environ.get(REPORT_ENV, "")
    value = raw.strip().lower()
    if value not in _TRUE_VALUES and value not in _FALSE_VALUES:
        warnings.warn(
            f"{REPORT_ENV}={raw!r} is not one of 1/true/yes or 0/false/no; "
            "cost reporting stays off",
            UserWarning,
            stacklevel=2,
        )
    return CostReporter(enabled=value in _TRUE_VALUES)


def colour_wanted(stream: object) -> bool:
    """Whether to colour what goes to ``stream``: never with ``NO_COLOR``; when forced; else
    only on a terminal."""
    if os.environ.get("NO_COLOR", ""):
        return False
    if colour_forced():
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def colour_forced() -> bool:
    """``FORCE_COLOR`` set to anything but empty, ``0`` or ``false``, or ``CLICOLOR_FORCE``
    set to anything but empty or ``0``: colours even when the output is not a terminal."""
    force = os.environ.get("FORCE_COLOR", "").strip().lower()
    clicolor = os.environ.get("CLICOLOR_FORCE", "").strip()
    return force not in ("", "0", "false") or clicolor not in ("", "0")


def format_usd(nanos: int, *, grouping: bool = False) -> str:
    """An amount of nano-USD shown exactly: four decimals (``$0.0123``), more when the
    amount has them (``$0.00000144``), so a cost is never rounded, nor shown as zero.

    ``grouping`` adds thousands separators (``$1,234.5000``) for tables.
    """
    amount = nanos_to_decimal(nanos)
    exponent = amount.normalize().as_tuple().exponent
    places = max(_MIN_PLACES, -exponent if isinstance(exponent, int) else 0)
    return f"${amount:{',' if grouping else ''}.{places}f}"


def _check_tokens(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _cost_to_nanos(cost: float | Decimal) -> int:
    if isinstance(cost, bool) or not isinstance(cost, (int, float, Decimal)):
        raise ValueError(f"cost must be a number of USD, got {cost!r}")
    if not math.isfinite(cost):
        raise ValueError(f"cost must be a finite number of USD, got {cost!r}")
    if cost < 0:
        raise ValueError(f"cost must not be negative, got {cost!r}")
    return usd_to_nanos(cost)


def _cost_colour(nanos: int) -> str:
    """Green under one cent, yellow up to ten cents, red above."""
    if nanos < _ONE_CENT:
        return _GREEN
    if nanos <= _TEN_CENTS:
        return _YELLOW
    return _RED


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text
