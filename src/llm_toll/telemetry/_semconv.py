"""Which version of the GenAI semantic conventions llm_toll emits.

By default, the names GenAI instrumentations have emitted so far (the conventions up to
semantic-conventions v1.36, as ``opentelemetry-instrumentation-openai-v2`` does). With
``OTEL_SEMCONV_STABILITY_OPT_IN`` listing ``gen_ai_latest_experimental``, the latest
release instead (semantic-conventions-genai v0.1.0), and not the old names, as the
conventions ask of instrumentations in transition.

The variable is a comma-separated list, read as ``opentelemetry-instrumentation`` reads it
(``opentelemetry.instrumentation._semconv``, not a dependency of llm_toll): each item
stripped, compared exactly. It is read once, at the first call, and again whenever
``setup_telemetry()`` runs; ``refresh()`` reads it anew.
"""

from __future__ import annotations

import os
from typing import Final

from llm_toll.telemetry._providers import on_reconfigure

OPT_IN_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
GEN_AI_LATEST: Final = "gen_ai_latest_experimental"

_latest: bool | None = None


def latest() -> bool:
    """True when the app opted in to the latest GenAI conventions."""
    if _latest is None:
        return refresh()
    return _latest


def refresh() -> bool:
    """Read ``OTEL_SEMCONV_STABILITY_OPT_IN`` again; whether it opts in to the latest."""
    global _latest
    opted = [item.strip() for item in os.environ.get(OPT_IN_ENV, "").split(",")]
    _latest = GEN_AI_LATEST in opted
    return _latest


def _reread() -> None:
    refresh()


on_reconfigure(_reread)
