"""What an LLM call costs: genai-prices, user overrides and local models, in one registry.

``default_registry`` prices every call ``track_costs`` records; ``register_model`` and
``set_fallback_pricing`` on it are llm-toll 0.13's way to add prices of one's own.
"""

from llm_toll.pricing._registry import (
    LOCAL_MODEL_PREFIXES,
    Price,
    PricingRegistry,
    default_registry,
)

__all__ = ["LOCAL_MODEL_PREFIXES", "Price", "PricingRegistry", "default_registry"]
