"""How calls to one model are priced, decided once per model and price data: a constant
(local models, unknown models), a linear price (overrides, the fallback), or genai-prices."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from llm_toll._budget.money import nanos_to_usd
from llm_toll.pricing._linear import LinearPrice
from llm_toll.usage._base import Usage

if TYPE_CHECKING:
    from llm_toll.pricing._genai import GenaiModel, Snapshot

PriceParts = tuple[int, bool, str, "str | None", tuple[str, ...]]
"""A ``Price``'s fields in order, for the call path, which records them without the object."""


@dataclass(frozen=True, slots=True)
class Price:
    """The cost of one call.

    ``known`` is False only when no price applied (the cost is then 0 and flagged);
    ``source`` says where the price came from: ``genai-prices``, ``override``, ``local``,
    ``fallback`` or ``unknown``; ``version`` which data of that source (genai-prices'
    version, and the time of its price data when refreshed by ``update_pricing``).
    ``unpriced`` names the reported units no price applied to (priced at 0): the cost is
    then only part of the bill.
    """

    cost_nanos: int
    known: bool
    source: str
    version: str | None = None
    unpriced: tuple[str, ...] = ()

    @property
    def usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


GENAI_SOURCE = "genai-prices"
UNKNOWN_PRICE = Price(0, known=False, source="unknown")
LOCAL_PRICE = Price(0, known=True, source="local")


class Quote(NamedTuple):
    """What a call with the five counts only costs, whatever its request time: the
    LinearPrice of the tier region its input count falls in (regions missing from
    ``regions``, or None there, are priced the slow way), and the other fields of its Price."""

    tier_starts: tuple[int, ...]
    regions: Mapping[int, LinearPrice | None]
    known: bool
    source: str
    version: str | None


NO_QUOTE = Quote((), {}, False, "unknown", None)
"""For prices that depend on the request time or on the price context: always the slow way."""

_FREE = LinearPrice(0, 0, 0, 0, 0, 0, 9)


class Route(Protocol):
    """How calls to one model are priced, decided once per model and price data."""

    def price(self, usage: Usage, at: datetime | None, context: Mapping[str, str]) -> Price: ...

    def quote(self, context: Mapping[str, str]) -> Quote: ...


@dataclass(frozen=True, slots=True)
class ConstantRoute:
    result: Price

    def price(self, usage: Usage, at: datetime | None, context: Mapping[str, str]) -> Price:
        return self.result  # unknown, or a local model: every unit is free

    def quote(self, context: Mapping[str, str]) -> Quote:
        result = self.result
        return Quote((), {0: _FREE}, result.known, result.source, result.version)


@dataclass(frozen=True, slots=True)
class LinearRoute:
    linear: LinearPrice
    source: str

    def price(self, usage: Usage, at: datetime | None, context: Mapping[str, str]) -> Price:
        # A price per token: the parts of the token counts are priced as the counts they
        # are part of; other units (web searches...) have no price here.
        unpriced = tuple(key for key in usage.units if not key.endswith("_tokens"))
        return Price(self.linear.nanos(usage), True, self.source, None, unpriced)

    def quote(self, context: Mapping[str, str]) -> Quote:
        return Quote((), {0: self.linear}, True, self.source, None)


@dataclass(frozen=True, slots=True)
class GenaiRoute:
    model: GenaiModel
    version: str = field(default_factory=lambda: str(genai().data_version()))

    def price(self, usage: Usage, at: datetime | None, context: Mapping[str, str]) -> Price:
        when = at if at is not None else datetime.now(timezone.utc)
        nanos, unpriced = self.model.price(usage, when, context)
        return Price(nanos, True, GENAI_SOURCE, self.version, unpriced)

    def quote(self, context: Mapping[str, str]) -> Quote:
        # The table's regions are filled in by ``price`` as calls first use them.
        table = self.model.fixed_table(context)
        if table is None:
            return NO_QUOTE
        return Quote(table.tier_starts, table.regions, True, GENAI_SOURCE, self.version)


UNKNOWN_ROUTE = ConstantRoute(UNKNOWN_PRICE)

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


QuoteKey = tuple[str, "str | None", tuple[tuple[str, str], ...]]
"""(model, provider, price context items)."""


class RouteCache(NamedTuple):
    """The price data routes were resolved from, the routes per (model, provider), and
    the quotes per (model, provider, price context)."""

    snapshot: Snapshot | None
    routes: dict[tuple[str, str | None], Route]
    quotes: dict[QuoteKey, Quote]


LOCAL_ROUTE = ConstantRoute(LOCAL_PRICE)
