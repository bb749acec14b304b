"""What the registry would charge for a model, spelled out: per-unit rates, tiers, price
variants, source and version (``llm-toll prices MODEL``), and names near an unknown one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from llm_toll.pricing._linear import LinearPrice
from llm_toll.pricing._routes import GENAI_SOURCE, LOCAL_PRICE, GenaiRoute, LinearRoute, Route

if TYPE_CHECKING:
    from llm_toll.pricing._genai import Snapshot

# genai-prices' price keys end in the amount they are per.
_PER = {"_mtok": "1M tokens", "_kcount": "1K"}


@dataclass(frozen=True, slots=True)
class Rate:
    """One unit's price in USD per ``per`` units (``1M tokens``, ``1K``); above each tier
    start (in input tokens) the tier's rate applies instead."""

    unit: str
    usd: Decimal
    per: str
    tiers: tuple[tuple[int, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class PriceSheet:
    """The price a registry applies to calls to ``model`` at a time."""

    model: str
    source: str
    """``genai-prices``, ``override``, ``fallback`` or ``local``."""
    version: str | None
    matched: str | None
    """The provider and model genai-prices matched the name to (``openai/gpt-4o``)."""
    rates: tuple[Rate, ...]
    variants: tuple[tuple[dict[str, str], tuple[Rate, ...]], ...] = ()
    """Prices that replace some rates in a price context (``service_tier=priority``)."""


def sheet_of(route: Route, model: str, at: datetime) -> PriceSheet | None:
    """The sheet of ``route`` (a registry's answer for ``model``); None if it has no price."""
    if isinstance(route, LinearRoute):
        return PriceSheet(model, route.source, None, None, _linear_rates(route.linear))
    if isinstance(route, GenaiRoute):
        info, provider = route.model.info, route.model.provider
        variants = tuple(
            (dict(variant.when), rates)
            for variant in info.price_variants or ()
            if variant.constraint is None or variant.constraint.active(at)
            if (rates := _genai_rates(variant.prices))
        )
        return PriceSheet(
            model,
            GENAI_SOURCE,
            route.version,
            f"{provider.id}/{info.id}",
            _genai_rates(info.get_prices(at)),
            variants,
        )
    if getattr(route, "result", None) == LOCAL_PRICE:
        return PriceSheet(model, "local", None, None, ())
    return None


def near_names(model: str, snapshot: Snapshot, others: Iterable[str], count: int = 5) -> list[str]:
    """Other known model names that look like ``model`` (a typo, a missing date suffix...)."""
    names = {m.id for provider in snapshot.providers for m in provider.models}
    names.update(others)
    names.discard(model)
    return difflib.get_close_matches(model, sorted(names), n=count, cutoff=0.6)


def providers_of(model: str, snapshot: Snapshot) -> list[str]:
    """The genai-prices providers that list ``model`` under this exact id: a name that is
    only found with its provider given (``text-embedding-3-small`` at ``openai``)."""
    return [p.id for p in snapshot.providers if any(m.id == model for m in p.models)]


def _genai_rates(model_price: object) -> tuple[Rate, ...]:
    rates: list[Rate] = []
    for key, value in sorted(vars(model_price).items(), key=_shown_order):
        if value is None:
            continue
        suffix = next((s for s in _PER if key.endswith(s)), None)
        if suffix is None:
            continue
        per = _PER[suffix]
        unit = key.removesuffix(suffix).replace("_", " ")
        tiers = getattr(value, "tiers", None)
        if tiers is None:
            rates.append(Rate(unit, Decimal(value), per))
        else:
            rates.append(
                Rate(unit, Decimal(value.base), per, tuple((t.start, t.price) for t in tiers))
            )
    return tuple(rates)


def _shown_order(item: tuple[str, object]) -> tuple[int, str]:
    """The text-token prices first, in a fixed order; the other units by name."""
    key = item[0]
    return (_FIRST.index(key), "") if key in _FIRST else (len(_FIRST), key)


_FIRST = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")


def _linear_rates(linear: LinearPrice) -> tuple[Rate, ...]:
    """A linear price per 1M tokens; its cache and reasoning coefficients are differences
    from the input and output rates (see ``LinearPrice``)."""

    def per_mtok(*coefficients: int) -> Decimal:
        return (Decimal(sum(coefficients)).scaleb(-linear.scale) * 1_000_000).normalize()

    return tuple(
        Rate(unit, usd, "1M tokens")
        for unit, usd in (
            ("input", per_mtok(linear.per_input)),
            ("cache read", per_mtok(linear.per_input, linear.per_cache_read)),
            ("cache write", per_mtok(linear.per_input, linear.per_cache_write)),
            ("output", per_mtok(linear.per_output)),
            ("reasoning", per_mtok(linear.per_output, linear.per_reasoning)),
        )
    )
