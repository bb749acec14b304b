"""An affine price over token counts, evaluated in integer arithmetic.

Every flat price (a user override, the fallback price, a genai-prices price without tiers, or
one tier of a tiered price) is an affine function of the five counts of a ``Usage``. Holding its
coefficients as integers in a fixed-point unit fine enough to be exact (10**-scale USD) makes the
hot path a handful of integer multiplications and one rounding to nano-USD.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from llm_toll.usage._base import Usage

_NANO_EXPONENT = 9


@dataclass(frozen=True, slots=True)
class LinearPrice:
    """``intercept + sum(coefficient * count)``, all in units of ``10**-scale`` USD.

    The coefficients are per token of each ``Usage`` field as it is reported: input includes
    cached tokens and output includes reasoning tokens, so the cache and reasoning coefficients
    hold the *difference* from the plain input and output price (often negative).
    """

    intercept: int
    per_input: int
    per_cache_read: int
    per_cache_write: int
    per_output: int
    per_reasoning: int
    scale: int

    @classmethod
    def from_usd(
        cls,
        *,
        intercept: Decimal,
        per_input: Decimal,
        per_cache_read: Decimal,
        per_cache_write: Decimal,
        per_output: Decimal,
        per_reasoning: Decimal,
    ) -> LinearPrice:
        """Build from exact USD amounts; raises ValueError for a non-finite amount."""
        amounts = (intercept, per_input, per_cache_read, per_cache_write, per_output, per_reasoning)
        if not all(amount.is_finite() for amount in amounts):
            raise ValueError(f"prices must be finite, got {amounts}")
        # The coarsest unit in which every amount is whole (never coarser than a nano-USD, the
        # unit results are rounded to), so that the integers below are exact.
        scale = max(_NANO_EXPONENT, *(-_exponent(amount) for amount in amounts))
        intercept_u, input_u, read_u, write_u, output_u, reasoning_u = (
            _whole_units(amount, scale) for amount in amounts
        )
        return cls(intercept_u, input_u, read_u, write_u, output_u, reasoning_u, scale)

    def exact_usd(self, usage: Usage) -> Decimal:
        """The exact cost, for checks against another calculation."""
        return Decimal(self._units(usage)).scaleb(-self.scale)

    def nanos(self, usage: Usage) -> int:
        """The cost in nano-USD, rounded half-to-even once."""
        units = self._units(usage)
        if self.scale == _NANO_EXPONENT:
            return units
        divisor: int = 10 ** (self.scale - _NANO_EXPONENT)
        nanos, remainder = divmod(units, divisor)
        twice = 2 * remainder
        if twice > divisor or (twice == divisor and nanos % 2 == 1):
            nanos += 1
        return nanos

    def _units(self, usage: Usage) -> int:
        return (
            self.intercept
            + self.per_input * usage.input_tokens
            + self.per_cache_read * usage.cache_read_input_tokens
            + self.per_cache_write * usage.cache_creation_input_tokens
            + self.per_output * usage.output_tokens
            + self.per_reasoning * usage.reasoning_output_tokens
        )


# Integer arithmetic on the digits, because Decimal operations round to the context precision.
def _exponent(amount: Decimal) -> int:
    """The exponent of the last non-zero digit of ``amount`` (0 for zero)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by the caller
    coefficient = int("".join(map(str, digits)))
    if coefficient == 0:
        return 0
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    return exponent


def _whole_units(amount: Decimal, scale: int) -> int:
    """``amount * 10**scale``, exactly; ``scale`` is at least ``-_exponent(amount)``."""
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)))
    shift = exponent + scale
    units: int = coefficient * 10**shift if shift >= 0 else coefficient // 10**-shift
    return -units if sign else units
