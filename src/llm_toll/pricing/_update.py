"""Refresh genai-prices' price data from the network, once, on request.

genai-prices ships a snapshot of prices with each release; ``update_pricing`` fetches the newer
one it publishes (with ``genai_prices.UpdatePrices.fetch``, synchronously, no background thread)
and makes it the data every later pricing uses. On any failure the bundled prices stay.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

from genai_prices import UpdatePrices
from genai_prices.data_snapshot import set_custom_snapshot
from genai_prices.update_prices import DEFAULT_UPDATE_URL

from llm_toll.exceptions import PricingMatrixOutdatedWarning
from llm_toll.pricing._genai import current_snapshot
from llm_toll.pricing._registry import PricingRegistry, default_registry

__all__ = ["DEFAULT_PRICING_URL", "DEFAULT_TTL_HOURS", "update_pricing"]

DEFAULT_PRICING_URL = DEFAULT_UPDATE_URL
DEFAULT_TTL_HOURS = 24


def update_pricing(
    *,
    url: str | None = None,
    ttl_hours: int = DEFAULT_TTL_HOURS,
    cache_path: Path | str | None = None,
    registry: PricingRegistry | None = None,
) -> bool:
    """Fetch genai-prices' latest price data and price every later call with it.

    Returns True when newer prices are in use (fetched now, or fetched by an earlier call less
    than ``ttl_hours`` ago), False on failure: one warning, and the prices in use stay.

    ``url`` defaults to genai-prices' own published data file. The request times out after
    genai-prices' default of 10 seconds (5 to connect). ``cache_path`` is accepted for
    compatibility and not used: the data lives in genai-prices, in memory. ``registry``
    (default: ``default_registry``) forgets its cached model lookups; every registry also
    notices new data by itself.
    """
    del cache_path  # kept in the signature for callers of llm-toll 0.13
    source = url or DEFAULT_PRICING_URL
    in_use = current_snapshot()
    if in_use.from_auto_update and in_use.active(timedelta(hours=ttl_hours)):
        return True
    try:
        fetched = UpdatePrices(url=source).fetch()
        if fetched is None:
            raise ValueError("the data file held no prices")
    except Exception as exc:  # network, HTTP status, malformed data: all mean "keep the old"
        warnings.warn(
            f"Could not update prices from {source}: {type(exc).__name__}: {exc}. "
            "The prices in use stay.",
            PricingMatrixOutdatedWarning,
            stacklevel=2,
        )
        return False
    set_custom_snapshot(fetched)
    (registry or default_registry).clear_cache()
    return True
