"""Prices from genai-prices, made cheap enough to run on every LLM call.

``genai_prices.calc_price`` takes tens of microseconds per call, more than the whole per-call
budget of the decorator. Its rules are not re-implemented here; instead:

* the (provider, model) lookup is done once per model (see ``find_model``);
* the price in force at the request time is still chosen by genai-prices on every call
  (``ModelInfo.get_prices``, a fraction of a microsecond), so a dated or time-of-day price
  change is always respected; what is cached is keyed by that ``ModelPrice`` object;
* a ``ModelPrice`` is affine in the token counts between two tier thresholds (a price without
  tiers has a single such region). For each region used, the exact coefficients are read off
  genai-prices' own calculation by finite differences (exact in ``Decimal`` for an affine
  function), then checked against a direct calculation of two other usages in the region, at
  its middle and at its top. A region that fails the check, or is too narrow to probe, is
  priced by a direct genai-prices calculation on every call instead.
"""

from __future__ import annotations

import gc
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, PriceVariant, Provider, TieredPrices
from genai_prices.units import UnitRegistry, _get_registry

from llm_toll._budget.money import usd_to_nanos
from llm_toll.pricing._linear import LinearPrice
from llm_toll.usage._base import MAX_TOKENS_PER_CALL, NO_CONTEXT, Usage

# Semantic-convention provider names whose genai-prices id differs or is not found by
# genai-prices' own provider matching (which, e.g., reads "azure.ai.openai" as OpenAI).
# Other names are passed to genai-prices as they are.
_GENAI_PROVIDER_IDS: dict[str, str] = {
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
}

# Model-name prefixes (LiteLLM's spelling, ``gemini/gemini-2.5-pro``) that are not a
# genai-prices provider id or a semantic-convention name already.
_PREFIX_PROVIDER_IDS: dict[str, str] = {
    "gemini": "google",
    "vertex_ai": "google",
    "bedrock": "aws",
    "xai": "x-ai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
}

Snapshot = data_snapshot.DataSnapshot

_MAX_CONTEXTS = 64


def preload() -> None:
    """Load genai-prices' price data now, and settle it in the oldest GC generation.

    For async code, which prices on the event loop: loading takes tens of ms, and the
    first full garbage collection after it walks the whole new object graph (another
    ~20 ms); both would otherwise land in the middle of the app's event loop.
    """
    if "genai_prices.data" not in sys.modules:
        current_snapshot()
        gc.collect()


# The price data genai-prices uses now (bundled, or refreshed by an update); genai-prices'
# own function, not a wrapper, as every priced call asks.
current_snapshot: Callable[[], Snapshot] = data_snapshot.get_snapshot


def data_version(snapshot: Snapshot | None = None) -> str:
    """Which price data prices a call: genai-prices' version, and when its data was
    fetched if ``update_pricing`` replaced the data bundled with it."""
    snapshot = current_snapshot() if snapshot is None else snapshot
    if snapshot.from_auto_update:
        return f"{genai_prices.__version__}+data.{snapshot.timestamp:%Y%m%dT%H%M%S}"
    return genai_prices.__version__


def genai_provider_id(provider: str) -> str:
    """The genai-prices provider id to try first for a semantic-convention provider name."""
    return _GENAI_PROVIDER_IDS.get(provider, provider)


def find_model(snapshot: Snapshot, model: str, provider: str | None) -> GenaiModel | None:
    """Resolve a model, trying the provider as a hint first, then the model name alone."""
    hints = (genai_provider_id(provider), None) if provider else (None,)
    for provider_id in hints:
        try:
            found_provider, info = snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
        return GenaiModel(found_provider, info)
    return None


def split_provider_prefix(snapshot: Snapshot, model: str) -> tuple[str, str] | None:
    """``("openai", "gpt-4o")`` for ``openai/gpt-4o``: the genai-prices provider id and the
    model, when the name starts with a provider genai-prices knows (as LiteLLM and
    OpenRouter name models); None otherwise."""
    prefix, _, rest = model.partition("/")
    if not rest:
        return None
    provider_id = _PREFIX_PROVIDER_IDS.get(prefix) or genai_provider_id(prefix)
    try:
        snapshot.find_provider(None, provider_id, None)
    except LookupError:
        return None
    return provider_id, rest


def find_model_of(snapshot: Snapshot, provider_id: str, model: str) -> GenaiModel | None:
    """``model`` of genai-prices provider ``provider_id`` only."""
    try:
        found_provider, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return GenaiModel(found_provider, info)


def to_genai_usage(usage: Usage) -> genai_prices.Usage:
    """Both count cached tokens inside input and reasoning tokens inside output; the other
    units are genai-prices' own usage keys already (those it does not know are left out,
    and reported unpriced)."""
    known = _unit_registry().units
    counts = {key: value for key, value in usage.units.items() if key in known}
    return genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        output_tokens=usage.output_tokens,
        # A priced unit of its own for a few models; elsewhere genai-prices prices it as output.
        output_reasoning_tokens=usage.reasoning_output_tokens,
        **counts,
    )


def _unit_registry() -> UnitRegistry:
    """genai-prices' units (their usage keys, price keys and which is part of which)."""
    return _get_registry()


def unpriced_units(model_price: ModelPrice, units: Iterable[str]) -> tuple[str, ...]:
    """The units no price of ``model_price`` applies to: neither a price of their own nor
    one of a unit they are part of (audio input tokens are input tokens). genai-prices
    prices such a unit at 0."""
    registry = _unit_registry()
    unpriced: list[str] = []
    for key in units:
        unit = registry.units.get(key)
        if unit is None:
            unpriced.append(key)
            continue
        covering = (key, *registry.ancestor_usage_keys(key))
        if all(
            getattr(model_price, registry.units[name].price_key, None) is None for name in covering
        ):
            unpriced.append(key)
    return tuple(unpriced)


@dataclass(slots=True)
class PriceTable:
    """What was derived for one ``ModelPrice``: per region, a LinearPrice, or None to ask
    genai-prices directly. Regions are added as calls use them, never changed."""

    model_price: ModelPrice
    tier_starts: tuple[int, ...]
    regions: dict[int, LinearPrice | None] = field(default_factory=dict)


class GenaiModel:
    """One model of genai-prices, priced fast for the usages it is called with."""

    __slots__ = ("_info", "_provider", "_tables", "_variants")

    def __init__(self, provider: Provider, info: ModelInfo) -> None:
        self._provider = provider
        self._info = info
        self._tables: dict[int, PriceTable] = {}
        # Per price context seen: the variants that match it and set a price (few contexts
        # in practice: the tiers and batch; bounded against a caller inventing them).
        self._variants: dict[tuple[tuple[str, str], ...], tuple[PriceVariant, ...]] = {}

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def provider(self) -> Provider:
        return self._provider

    def nanos(self, usage: Usage, when: datetime) -> int:
        """The cost of ``usage`` at request time ``when``, in nano-USD."""
        return self.price(usage, when, NO_CONTEXT)[0]

    def price(
        self, usage: Usage, when: datetime, context: Mapping[str, str]
    ) -> tuple[int, tuple[str, ...]]:
        """The cost of ``usage`` at request time ``when`` in the price context ``context``
        (the service tier served, batch processing...), in nano-USD; and the reported units
        no price applied to.

        Calls with only the five counts, in a context that changes no price, take the fast
        path; the others are priced by genai-prices' own calculation.
        """
        if not usage.units and not self._varies_in(context, when):
            linear = self.linear_price(when, usage.input_tokens)
            if linear is not None:
                return linear.nanos(usage), ()
            return usd_to_nanos(self.exact_usd(usage, when)), ()
        calc = self._info.calc_price(
            to_genai_usage(usage),
            self._provider,
            genai_request_timestamp=when,
            price_context=context or None,
        )
        unpriced = unpriced_units(calc.model_price, usage.units) if usage.units else ()
        return usd_to_nanos(calc.total_price), unpriced

    def _varies_in(self, context: Mapping[str, str], when: datetime) -> bool:
        """Whether a price variant of this model sets a price in ``context`` at ``when``."""
        if not context:
            return False
        return any(
            variant.constraint is None or variant.constraint.active(when)
            for variant in self._variants_in(context)
        )

    def _variants_in(self, context: Mapping[str, str]) -> tuple[PriceVariant, ...]:
        """The price variants that match ``context`` and set a price, at any time."""
        key = tuple(context.items())
        variants = self._variants.get(key)
        if variants is None:
            variants = tuple(
                variant
                for variant in self._info.price_variants or ()
                if all(context.get(name) == value for name, value in variant.when.items())
                and any(price is not None for price in vars(variant.prices).values())
            )
            if len(self._variants) < _MAX_CONTEXTS:
                self._variants[key] = variants
        return variants

    def fixed_table(self, context: Mapping[str, str]) -> PriceTable | None:
        """The table every call in ``context`` is priced from, whatever its request time;
        None when the price in force depends on the time (dated or time-of-day prices) or
        a variant sets a price in ``context``."""
        model_price = self._info.prices
        if not isinstance(model_price, ModelPrice) or (context and self._variants_in(context)):
            return None
        return self._table(model_price)

    def linear_price(self, when: datetime, input_tokens: int) -> LinearPrice | None:
        """The fast price for calls at ``when`` with this many input tokens, derived on first
        use; None when such calls are priced by genai-prices directly."""
        table = self._table(self._info.get_prices(when))
        # Tiers apply when the input count is *above* a start, as in genai-prices.
        region = bisect_left(table.tier_starts, input_tokens) if table.tier_starts else 0
        try:
            return table.regions[region]
        except KeyError:
            linear = table.regions[region] = self._derive(table, region, when)
            return linear

    def _table(self, model_price: ModelPrice) -> PriceTable:
        table = self._tables.get(id(model_price))
        if table is None or table.model_price is not model_price:
            table = PriceTable(model_price, _tier_starts(model_price))
            self._tables[id(model_price)] = table
        return table

    def exact_usd(self, usage: Usage, when: datetime) -> Decimal:
        """genai-prices' own calculation, without the lookup ``calc_price`` repeats."""
        calc = self._info.calc_price(
            to_genai_usage(usage), self._provider, genai_request_timestamp=when
        )
        return calc.total_price

    def _derive(self, table: PriceTable, region: int, when: datetime) -> LinearPrice | None:
        starts = table.tier_starts
        lowest = starts[region - 1] + 1 if region > 0 else 0
        highest = starts[region] if region < len(starts) else MAX_TOKENS_PER_CALL
        if highest - lowest < 1:
            return None

        def cost(usage: Usage) -> Decimal:
            calc = self._info.calc_price(
                to_genai_usage(usage), self._provider, genai_request_timestamp=when
            )
            if calc.model_price is not table.model_price:
                raise LookupError("genai-prices chose another price while deriving this one")
            return calc.total_price

        try:
            base = cost(Usage(lowest))
            one_more = cost(Usage(lowest + 1))
            output = cost(Usage(lowest, 1))
            per_input = one_more - base
            linear = LinearPrice.from_usd(
                intercept=base - per_input * lowest,
                per_input=per_input,
                per_cache_read=cost(Usage(lowest + 1, 0, 1)) - one_more,
                per_cache_write=cost(Usage(lowest + 1, 0, 0, 1)) - one_more,
                per_output=output - base,
                per_reasoning=cost(Usage(lowest, 1, 0, 0, 1)) - output,
            )
            probes = (_probe((lowest + highest) // 2), _probe(highest))
            if all(linear.exact_usd(probe) == cost(probe) for probe in probes):
                return linear
        except (ArithmeticError, LookupError, ValueError):
            pass
        return None


def _tier_starts(model_price: ModelPrice) -> tuple[int, ...]:
    starts = {
        tier.start
        for price in vars(model_price).values()
        if isinstance(price, TieredPrices)
        for tier in price.tiers
    }
    return tuple(sorted(starts))


def _probe(input_tokens: int) -> Usage:
    """A usage with every count non-zero and unrelated to the others, for the check."""
    return Usage(
        input_tokens=input_tokens,
        output_tokens=7919,
        cache_read_input_tokens=input_tokens // 5,
        cache_creation_input_tokens=input_tokens // 7,
        reasoning_output_tokens=3001,
    )
