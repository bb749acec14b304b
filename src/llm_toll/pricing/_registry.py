"""What an LLM call cost: genai-prices, user overrides and local models, in one registry.

``PricingRegistry.price`` is called on every tracked call. It looks, in order, at

1. user overrides (``register_model``): the exact model name, then the longest registered name
   the model starts with at a ``-`` or ``/`` boundary (``gpt-4o`` prices ``gpt-4o-2024-08-06``);
2. local models (``ollama/``, ``local/``, ``llama.cpp/``): free;
3. genai-prices, at the price in force at the request time; a name prefixed by its provider
   (``openai/gpt-4o``, as LiteLLM and OpenRouter write them) is priced as the model after
   the prefix at that provider, as llm-toll 0.13's LiteLLM callback did;
4. the fallback price, if ``set_fallback_pricing`` was called;
5. otherwise the model is unknown: cost 0, ``known=False``, and one
   ``PricingMatrixOutdatedWarning`` per model name and registry.

Costs are exact to 1e-9 USD per call: prices are taken as decimals (floats through their
``repr``, so ``2.5e-06`` is exactly that), multiplied out without rounding, and rounded once,
half-to-even, to whole nano-USD. ``price`` never raises: a pricing problem is a warning and an
unknown price, never an error in the caller's LLM call.
"""

from __future__ import annotations

import threading
import warnings
from bisect import bisect_left
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from llm_toll.exceptions import PricingMatrixOutdatedWarning, UsageWarning
from llm_toll.pricing._linear import LinearPrice
from llm_toll.pricing._overrides import find_override, override_price
from llm_toll.pricing._routes import (
    LOCAL_ROUTE,
    UNKNOWN_PRICE,
    UNKNOWN_ROUTE,
    GenaiRoute,
    LinearRoute,
    Price,
    PriceParts,
    QuoteKey,
    Route,
    RouteCache,
    genai,
)
from llm_toll.pricing._sheet import PriceSheet, near_names, providers_of, sheet_of
from llm_toll.usage._base import NO_CONTEXT, Usage, UsageError

if TYPE_CHECKING:
    from llm_toll.pricing._genai import Snapshot

__all__ = ["LOCAL_MODEL_PREFIXES", "Price", "PricingRegistry", "default_registry"]

LOCAL_MODEL_PREFIXES: tuple[str, ...] = ("ollama/", "local/", "llama.cpp/")
"""Models served on the user's own hardware: tracked for tokens and limits, priced at 0."""

# Model names seen by one registry are few in practice; this only bounds a pathological caller.
_MAX_CACHED_ROUTES = 4096


class PricingRegistry:
    """Prices LLM calls: user overrides, then local models, then genai-prices, then a fallback.

    Thread-safe. The model lookup is cached per (model, provider), and what a call costs
    per (model, provider, price context) when that does not depend on the request time;
    both are dropped whenever the overrides, the fallback or genai-prices' data change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Replaced, never mutated, so readers need no lock.
        self._overrides: dict[str, LinearPrice] = {}
        self._fallback: LinearPrice | None = None
        # The price data the cached routes were resolved from, with those routes and quotes.
        self._state = RouteCache(None, {}, {})
        self._warned: set[tuple[str, str]] = set()

    # -- pricing --------------------------------------------------------------------------

    def price(
        self,
        model: str,
        usage: Usage,
        *,
        provider: str | None = None,
        at: datetime | None = None,
        context: Mapping[str, str] = NO_CONTEXT,
    ) -> Price:
        """The cost of one call to ``model`` with ``usage``, requested at ``at`` (default now).

        ``provider`` is the semantic-convention provider name (``openai``, ``gcp.gemini``,
        ``aws.bedrock``...), used as a hint for genai-prices. ``context`` is genai-prices'
        price context as the response reported it: ``{"service_tier": "flex"}``,
        ``{"processing": "batch"}``. A reported unit no price applies to is named in
        ``Price.unpriced`` and warned about once per model and unit. Never raises.
        """
        return Price(*self.price_parts(model, usage, provider, at=at, context=context))

    def price_parts(
        self,
        model: str,
        usage: Usage,
        provider: str | None = None,
        *,
        at: datetime | None = None,
        context: Mapping[str, str] = NO_CONTEXT,
    ) -> PriceParts:
        """``price``'s fields, without the Price object: what the call path records."""
        # Every tracked call comes here: a call with the five counts only, to a model priced
        # before in this context, is a dict lookup and a few integer multiplications.
        state = self._state
        key: QuoteKey | None
        try:
            key = (model, provider, tuple(context.items()) if context else ())
            quote = state.quotes.get(key)
            if (
                quote is not None
                and state.snapshot is genai().current_snapshot()
                and _is_consistent(usage)
            ):
                starts, regions, known, source, version = quote
                # Tiers apply when the input count is *above* a start, as in genai-prices.
                linear = regions.get(bisect_left(starts, usage.input_tokens) if starts else 0)
                if linear is not None:
                    return linear.nanos(usage), known, source, version, ()
        except Exception:  # bad arguments: the slow path says what is wrong with them
            key = None
        price = self._price(model, usage, provider, at=at, context=context)
        if key is not None:
            self._remember_quote(state, key)
        return price.cost_nanos, price.known, price.source, price.version, price.unpriced

    def _price(
        self,
        model: str,
        usage: Usage,
        provider: str | None,
        *,
        at: datetime | None,
        context: Mapping[str, str],
    ) -> Price:
        try:
            if not _is_consistent(usage):
                checked = self._checked_usage(model, usage)
                if checked is None:
                    return UNKNOWN_PRICE
                usage = checked
            route = self._route(model, provider)
            if route is UNKNOWN_ROUTE and (model, "unknown") not in self._warned:
                self._warn_once(model, "unknown", _unknown_model_message(model, provider))
            price = route.price(usage, at, context)
            if price.unpriced:
                self._warn_unpriced(model, price.unpriced)
            return price
        except Exception as exc:  # a pricing problem must never break the caller's call
            if isinstance(exc, Warning):
                raise  # the app's own warning filters turned our warning into an error
            self._warn_once(
                str(model),
                "error",
                f"Could not price a call to model {model!r}: {type(exc).__name__}: {exc}. "
                "Its tokens are recorded, but its cost is recorded as $0 and flagged "
                "llm_toll.price.known=false.",
            )
            return UNKNOWN_PRICE

    def _remember_quote(self, state: RouteCache, key: QuoteKey) -> None:
        """Quote ``key`` for the next calls, once a call was priced (and warned about) the
        slow way with a route of ``state``; the quotes are dropped with the routes."""
        quotes = state.quotes
        if key in quotes:
            return
        model, provider, items = key
        route = state.routes.get((model, provider))
        if route is None:  # resolving failed, or the routes were dropped meanwhile
            return
        try:
            quote = route.quote(dict(items))
        except Exception:  # no quote: calls stay on the slow path, which warns
            return
        if len(quotes) >= _MAX_CACHED_ROUTES:
            quotes.clear()
        quotes[key] = quote

    def get_cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """Cost in USD of ``input_tokens`` and ``output_tokens`` (0.0 and a warning if unknown)."""
        return self.price(model, Usage(input_tokens, output_tokens)).usd

    # -- configuration --------------------------------------------------------------------

    def register_model(
        self,
        model: str,
        input_cost_per_token: float,
        output_cost_per_token: float,
        *,
        cache_read_cost_per_token: float | None = None,
        cache_write_cost_per_token: float | None = None,
    ) -> None:
        """Register or override the price of ``model`` (and of names it prefixes).

        Cache reads and writes cost the input price unless given. Raises ValueError for a
        negative or non-finite price.
        """
        linear = override_price(
            input_cost_per_token,
            output_cost_per_token,
            cache_read_cost_per_token,
            cache_write_cost_per_token,
        )
        with self._lock:
            self._overrides = {**self._overrides, model: linear}
            self._forget_routes()

    def load_remote_pricing(self, models: dict[str, tuple[float, float]]) -> int:
        """Register ``{model: (input_cost_per_token, output_cost_per_token)}``; returns the count.

        All prices are checked first, so a bad entry raises ValueError and registers nothing.
        """
        prices = {name: override_price(inp, out) for name, (inp, out) in models.items()}
        with self._lock:
            self._overrides = {**self._overrides, **prices}
            self._forget_routes()
        return len(prices)

    def set_fallback_pricing(
        self, input_cost_per_token: float, output_cost_per_token: float
    ) -> None:
        """Price models nobody knows at these rates instead of 0 (``source="fallback"``)."""
        linear = override_price(input_cost_per_token, output_cost_per_token)
        with self._lock:
            self._fallback = linear
            self._forget_routes()

    def clear_cache(self) -> None:
        """Forget every model lookup, e.g. after genai-prices' data was refreshed."""
        with self._lock:
            self._forget_routes()

    # -- questions ------------------------------------------------------------------------

    def has_model(self, model: str) -> bool:
        """True if ``model`` has a price of its own: an override, a local prefix or genai-prices.

        The fallback price does not count.
        """
        try:
            route = self._route(model, None)
        except Exception:
            return False
        if isinstance(route, LinearRoute):
            return route.source == "override"
        return route is not UNKNOWN_ROUTE

    def is_priced(self, model: str, provider: str | None = None) -> bool:
        """True if a call to ``model`` gets a price: ``has_model``, or the fallback price.

        False for a model whose calls would be recorded at $0 with ``known=False`` (what
        ``on_unpriced="refuse"`` refuses before a request is sent). Never raises."""
        try:
            return self._route(model, provider) is not UNKNOWN_ROUTE
        except Exception:
            return False

    def list_models(self) -> list[str]:
        """The overridden model names and the local prefixes.

        genai-prices' models are not listed: it matches names by rules (dated snapshots,
        aliases), not from a list, so use ``has_model`` to ask about one.
        """
        return sorted({*self._overrides, *LOCAL_MODEL_PREFIXES})

    def price_sheet(
        self, model: str, provider: str | None = None, at: datetime | None = None
    ) -> PriceSheet | None:
        """The rates calls to ``model`` are priced at, at ``at`` (default now), with their
        source and version; None if the model has no price (the fallback counts)."""
        when = at if at is not None else datetime.now(timezone.utc)
        return sheet_of(self._route(model, provider), model, when)

    def similar_models(self, model: str) -> list[str]:
        """Other model names with a price that look like ``model``, closest first."""
        return near_names(model, genai().current_snapshot(), self._overrides)

    def providers_of(self, model: str) -> list[str]:
        """genai-prices providers listing ``model`` by this exact name (to pass as
        ``provider`` when the name alone does not find it)."""
        return providers_of(model, genai().current_snapshot())

    # -- internals ------------------------------------------------------------------------

    def _route(self, model: str, provider: str | None) -> Route:
        snapshot = genai().current_snapshot()
        state = self._state
        if state.snapshot is not snapshot:
            with self._lock:
                if self._state.snapshot is not snapshot:
                    self._state = RouteCache(snapshot, {}, {})
                state = self._state
        routes = state.routes
        key = (model, provider)
        route = routes.get(key)
        if route is None:
            route = self._resolve(snapshot, model, provider)
            if len(routes) >= _MAX_CACHED_ROUTES:
                routes.clear()
            routes[key] = route
        return route

    def _resolve(self, snapshot: Snapshot, model: str, provider: str | None) -> Route:
        override = find_override(self._overrides, model)
        if override is not None:
            return LinearRoute(override, "override")
        if model.startswith(LOCAL_MODEL_PREFIXES):
            return LOCAL_ROUTE
        genai_model = genai().find_model(snapshot, model, provider)
        if genai_model is not None:
            return GenaiRoute(genai_model)
        prefixed = self._resolve_provider_prefixed(snapshot, model)
        if prefixed is not None:
            return prefixed
        if self._fallback is not None:
            return LinearRoute(self._fallback, "fallback")
        return UNKNOWN_ROUTE

    def _resolve_provider_prefixed(self, snapshot: Snapshot, model: str) -> Route | None:
        """``openai/gpt-4o`` (LiteLLM's and OpenRouter's names): the model after a provider
        prefix, at that provider; an override of the model wins. None if not such a name."""
        split = genai().split_provider_prefix(snapshot, model)
        if split is None:
            return None
        provider_id, rest = split
        override = find_override(self._overrides, rest)
        if override is not None:
            return LinearRoute(override, "override")
        genai_model = genai().find_model_of(snapshot, provider_id, rest)
        return None if genai_model is None else GenaiRoute(genai_model)

    def _forget_routes(self) -> None:
        """Caller holds the lock."""
        self._state = RouteCache(None, {}, {})

    def _checked_usage(self, model: str, usage: Usage) -> Usage | None:
        """The usage normalised by ``Usage.checked``, or None (with a warning) if it is bad."""
        try:
            return usage.checked_copy()
        except UsageError as exc:
            self._warn_once(
                model,
                "usage",
                f"Cannot price a call to model {model!r}: its usage is inconsistent ({exc}). "
                "Its cost is recorded as $0 and flagged llm_toll.price.known=false.",
                category=UsageWarning,
                stacklevel=6,
            )
            return None

    def _warn_unpriced(self, model: str, units: tuple[str, ...]) -> None:
        for unit in units:
            if (model, f"unit:{unit}") not in self._warned:
                self._warn_once(
                    model,
                    f"unit:{unit}",
                    f"No price is known for the {unit} of model {model!r}: they are "
                    "recorded, but priced at $0, so its calls' costs are only part of the "
                    "bill (flagged llm_toll.price.partial). Refresh genai-prices' data with "
                    "llm_toll.update_pricing().",
                    stacklevel=6,
                )

    def _warn_once(
        self,
        model: str,
        cause: str,
        message: str,
        *,
        category: type[Warning] = PricingMatrixOutdatedWarning,
        stacklevel: int = 5,
    ) -> None:
        """``stacklevel`` defaults to the caller of ``price`` (via ``price_parts``, ``_price``)."""
        key = (model, cause)
        if key in self._warned:  # the common case, without taking the lock
            return
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        warnings.warn(message, category, stacklevel=stacklevel)


def _is_consistent(usage: Usage) -> bool:
    """Whole, non-negative counts with the cached and reasoning parts inside their totals."""
    inp = usage.input_tokens
    out = usage.output_tokens
    read = usage.cache_read_input_tokens
    write = usage.cache_creation_input_tokens
    reasoning = usage.reasoning_output_tokens
    return (
        type(inp) is int
        and type(out) is int
        and type(read) is int
        and type(write) is int
        and type(reasoning) is int
        and read >= 0
        and write >= 0
        and reasoning >= 0
        and read + write <= inp
        and reasoning <= out
        and not usage.units  # rare, and priced the slow way: always checked
    )


def _unknown_model_message(model: str, provider: str | None) -> str:
    via = f" (provider {provider!r})" if provider else ""
    return (
        f"No price is known for model {model!r}{via}: its tokens are recorded, but its cost is "
        "not (recorded as $0 and flagged llm_toll.price.known=false). Register its price with "
        f"llm_toll.pricing.default_registry.register_model({model!r}, input_cost_per_token, "
        "output_cost_per_token), or refresh genai-prices' data with llm_toll.update_pricing()."
    )


default_registry = PricingRegistry()
"""The registry ``track_costs`` prices calls with."""
