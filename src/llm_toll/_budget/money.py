"""Exact money: amounts are kept as integer nano-USD; floats appear only at the API edge."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

NANOS_PER_USD = 1_000_000_000
MAX_CALL_COST_NANOS = 10**15
"""The most one call's record may cost, $1,000,000: far above any real call (10**8 tokens
at the dearest prices cost tens of thousands of dollars), and low enough that thousands of
such calls still fit a store's 64-bit running total. A dearer price is clamped to it."""
_ONE_NANO = Decimal(1).scaleb(-9)


def usd_to_nanos(amount: float | Decimal | int | str) -> int:
    """Convert a USD amount to integer nano-USD, rounding half-to-even at the ninth decimal.

    Floats go through ``repr`` so that ``0.1`` becomes exactly 100_000_000 nanos.
    """
    if isinstance(amount, float):
        amount = repr(amount)
    return int(Decimal(amount).quantize(_ONE_NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def nanos_to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def nanos_to_decimal(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


def nanos_to_text(nanos: int) -> str:
    """The exact USD amount as a plain decimal: ``0.00000016``, ``6.95``, ``0``; never an
    exponent (``1.6e-07``) nor trailing zeros."""
    return format(nanos_to_decimal(nanos).normalize(), "f")
