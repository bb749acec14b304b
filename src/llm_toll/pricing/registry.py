"""What an LLM call cost: genai-prices, user overrides and local models, in one registry.

``PricingRegistry.price`` is called on every tracked call. It looks, in order, at

1. user overrides (``register_model``): the exact model name, then the longest registered name
   the model starts with at a ``-`` or ``/`` boundary (``gpt-4o`` prices ``gpt-4o-2024-08-06``);
2. local models (``ollama/``, ``local/``, ``llama.cpp/``): free;
3. genai-prices, at the price in force at the request time;
4. the fallback price, if ``set_fallback_pricing`` was called;
5. otherwise the model is unknown: cost 0, ``known=False``, and one
   ``PricingMatrixOutdatedWarning`` per model name and registry.

Costs are exact to 1e-9 USD per call: prices are taken as decimals (floats through their
``repr``, so ``2.5e-06`` is exactly that), multiplied out without rounding, and rounded once,
half-to-even, to whole nano-USD. ``price`` never raises: a pricing problem is a warning and an
unknown price, never an error in the caller's LLM call.
"""

from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from llm_toll._budget.money import nanos_to_usd
from llm_toll.exceptions import PricingMatrixOutdatedWarning, UsageWarning
from llm_toll.pricing._linear import LinearPrice
from llm_toll.usage.base import Usage, UsageError

if TYPE_CHECKING:
    from llm_toll.pricing._genai import GenaiModel, Snapshot

__all__ = ["LOCAL_MODEL_PREFIXES", "Price", "PricingRegistry", "default_registry"]

LOCAL_MODEL_PREFIXES: tuple[str, ...] = ("ollama/", "local/", "llama.cpp/")
"""Models served on the user's own hardware: tracked for tokens and limits, priced at 0."""

# Model names seen by one registry are few in practice; this only bounds a pathological caller.
_MAX_CACHED_ROUTES = 4096


@dataclass(frozen=True, slots=True)
class Price:
    """The cost of one call.

    ``known`` is False only when no price applied (the cost is then 0 and flagged);
    ``source`` says where the price came from: ``genai-prices <version>``, ``override``,
    ``local``, ``fallback`` or ``unknown``.
    """

    cost_nanos: int
    known: bool
    source: str

    @property
    def usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


UNKNOWN_PRICE = Price(0, known=False, source="unknown")
_LOCAL_PRICE = Price(0, known=True, source="local")


class _Route(Protocol):
    """How calls to one model are priced, decided once per model and price data."""

    def price(self, usage: Usage, at: datetime | None) -> Price: ...


@dataclass(frozen=True, slots=True)
class _ConstantRoute:
    result: Price

    def price(self, usage: Usage, at: datetime | None) -> Price:
        return self.result


@dataclass(frozen=True, slots=True)
class _LinearRoute:
    linear: LinearPrice
    source: str

    def price(self, usage: Usage, at: datetime | None) -> Price:
        return Price(self.linear.nanos(usage), True, self.source)


@dataclass(frozen=True, slots=True)
class _GenaiRoute:
    model: GenaiModel

    def price(self, usage: Usage, at: datetime | None) -> Price:
        when = at if at is not None else datetime.now(timezone.utc)
        return Price(self.model.nanos(usage, when), True, genai().GENAI_PRICES_SOURCE)


_UNKNOWN_ROUTE = _ConstantRoute(UNKNOWN_PRICE)

_genai_module: ModuleType | None = None


def genai() -> ModuleType:
    """llm_toll's genai-prices module, imported on first use: genai-prices brings pydantic
    and its price data, tens of milliseconds that ``import llm_toll`` should not cost."""
    global _genai_module
    if _genai_module is None:
        from llm_toll.pricing import _genai

        _genai_module = _genai
    return _genai_module


def prices_loaded() -> bool:
    """Whether genai-prices' price data is in memory; loading it takes tens of ms."""
    return "genai_prices.data" in sys.modules


def preload() -> None:
    """Load genai-prices' price data now (for async code, which prices on the event loop)."""
    genai().preload()


class _RouteCache(NamedTuple):
    """The price data routes were resolved from, and the routes per (model, provider)."""

    snapshot: Snapshot | None
    routes: dict[tuple[str, str | None], _Route]


_LOCAL_ROUTE = _ConstantRoute(_LOCAL_PRICE)


class PricingRegistry:
    """Prices LLM calls: user overrides, then local models, then genai-prices, then a fallback.

    Thread-safe. The model lookup is cached per (model, provider) and dropped whenever the
    overrides, the fallback or genai-prices' data change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Replaced, never mutated, so readers need no lock.
        self._overrides: dict[str, LinearPrice] = {}
        self._fallback: LinearPrice | None = None
        # The price data the cached routes were resolved from, with those routes.
        self._state = _RouteCache(None, {})
        self._warned: set[tuple[str, str]] = set()

    # -- pricing --------------------------------------------------------------------------

    def price(
        self,
        model: str,
        usage: Usage,
        *,
        provider: str | None = None,
        at: datetime | None = None,
    ) -> Price:
        """The cost of one call to ``model`` with ``usage``, requested at ``at`` (default now).

        ``provider`` is the semantic-convention provider name (``openai``, ``gcp.gemini``,
        ``aws.bedrock``...), used as a hint for genai-prices. Never raises.
        """
        try:
            if not _is_consistent(usage):
                checked = self._checked_usage(model, usage)
                if checked is None:
                    return UNKNOWN_PRICE
                usage = checked
            route = self._route(model, provider)
            if route is _UNKNOWN_ROUTE and (model, "unknown") not in self._warned:
                self._warn_once(model, "unknown", _unknown_model_message(model, provider))
            return route.price(usage, at)
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
        linear = _override_price(
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
        prices = {name: _override_price(inp, out) for name, (inp, out) in models.items()}
        with self._lock:
            self._overrides = {**self._overrides, **prices}
            self._forget_routes()
        return len(prices)

    def set_fallback_pricing(
        self, input_cost_per_token: float, output_cost_per_token: float
    ) -> None:
        """Price models nobody knows at these rates instead of 0 (``source="fallback"``)."""
        linear = _override_price(input_cost_per_token, output_cost_per_token)
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
        if isinstance(route, _LinearRoute):
            return route.source == "override"
        return route is not _UNKNOWN_ROUTE

    def list_models(self) -> list[str]:
        """The overridden model names and the local prefixes.

        genai-prices' models are not listed: it matches names by rules (dated snapshots,
        aliases), not from a list, so use ``has_model`` to ask about one.
        """
        return sorted({*self._overrides, *LOCAL_MODEL_PREFIXES})

    # -- internals ------------------------------------------------------------------------

    def _route(self, model: str, provider: str | None) -> _Route:
        snapshot = genai().current_snapshot()
        state = self._state
        if state.snapshot is not snapshot:
            with self._lock:
                if self._state.snapshot is not snapshot:
                    self._state = _RouteCache(snapshot, {})
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

    def _resolve(self, snapshot: Snapshot, model: str, provider: str | None) -> _Route:
        override = _find_override(self._overrides, model)
        if override is not None:
            return _LinearRoute(override, "override")
        if model.startswith(LOCAL_MODEL_PREFIXES):
            return _LOCAL_ROUTE
        genai_model = genai().find_model(snapshot, model, provider)
        if genai_model is not None:
            return _GenaiRoute(genai_model)
        if self._fallback is not None:
            return _LinearRoute(self._fallback, "fallback")
        return _UNKNOWN_ROUTE

    def _forget_routes(self) -> None:
        """Caller holds the lock."""
        self._state = _RouteCache(None, {})

    def _checked_usage(self, model: str, usage: Usage) -> Usage | None:
        """The usage normalised by ``Usage.checked``, or None (with a warning) if it is bad."""
        try:
            return Usage.checked(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
                usage.reasoning_output_tokens,
            )
        except UsageError as exc:
            self._warn_once(
                model,
                "usage",
                f"Cannot price a call to model {model!r}: its usage is inconsistent ({exc}). "
                "Its cost is recorded as $0 and flagged llm_toll.price.known=false.",
                UsageWarning,
                stacklevel=4,
            )
            return None

    def _warn_once(
        self,
        model: str,
        cause: str,
        message: str,
        category: type[Warning] = PricingMatrixOutdatedWarning,
        stacklevel: int = 3,
    ) -> None:
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
    )


def _find_override(overrides: dict[str, LinearPrice], model: str) -> LinearPrice | None:
    exact = overrides.get(model)
    if exact is not None:
        return exact
    matches = [key for key in overrides if _is_boundary_match(model, key)]
    return overrides[max(matches, key=len)] if matches else None


def _is_boundary_match(model: str, key: str) -> bool:
    """``key`` prefixes ``model`` at a word boundary, so ``o3`` prices ``o3-mini`` not ``o3000``.

    Keys ending in ``/`` or ``-`` are namespaces and match any suffix.
    """
    if not model.startswith(key):
        return False
    if len(model) == len(key) or key.endswith(("/", "-")):
        return True
    return model[len(key)] in "-/"


def _override_price(
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
