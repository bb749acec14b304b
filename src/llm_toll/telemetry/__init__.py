"""Telemetry: where llm_toll's spans and metrics go (``providers``), how they are exported
(``export``), what they are called (``names``), and how a call's span and metrics are made
(``spans``, ``metrics``)."""

from llm_toll.telemetry._providers import attach, flush, setup_telemetry

__all__ = ["attach", "flush", "setup_telemetry"]
