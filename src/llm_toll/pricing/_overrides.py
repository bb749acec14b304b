"""Prices users set themselves (``register_model``, ``set_fallback_pricing``): per-token
USD amounts, taken exactly, and matched to model names by prefix at a word boundary."""

from __future__ import annotations

from decimal import Decimal

from llm_toll.pricing._linear import LinearPrice


def find_override(overrides: dict[str, LinearPrice], model: str) -> LinearPrice | None:
    exact = overrides.get(model)
    if exact is not None:
        return exact
    matches = [key for key in overrides if is_boundary_match(model, key)]
    return overrides[max(matches, key=len)] if matches else None


def is_boundary_match(model: str, key: str) -> bool:
    """``key`` prefixes ``model`` at a word boundary, so ``o3`` prices ``o3-mini`` not ``o3000``.

    Keys ending in ``/`` or ``-`` are namespaces and match any suffix.
    """
    if not model.startswith(key):
        return False
    if len(model) == len(key) or key.endswith(("/", "-")):
        return True
    return model[len(key)] in "-/"


def override_price(
    input_cost: float,
    output_cost: float,
    cache_read_cost: float | None = None,
    cache_write_cost: float | None = None,
) -> LinearPrice:
    """A user's per-token prices as a LinearPrice over the usage counts."""
    per_input = _per_token("input_cost_per_token", input_cost)
    per_output = _per_token("output_cost_per_token", output_cost)
    per_read = (
        per_input
        if cache_read_cost is None
        else _per_token("cache_read_cost_per_token", cache_read_cost)
    )
    per_write = (
        per_input
        if cache_write_cost is None
        else _per_token("cache_write_cost_per_token", cache_write_cost)
    )
    # Cached tokens are inside the input count: they replace the input price, never add to it.
    return LinearPrice.from_usd(
        intercept=Decimal(0),
        per_input=per_input,
        per_cache_read=per_read - per_input,
        per_cache_write=per_write - per_input,
        per_output=per_output,
        per_reasoning=Decimal(0),
    )


def _per_token(name: str, value: float) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    if amount < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return amount
