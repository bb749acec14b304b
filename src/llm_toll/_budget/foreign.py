"""Spans of other GenAI instrumentations, priced and recorded (``price_foreign_spans=True``).

An instrumentation such as ``opentelemetry-instrumentation-openai-v2``, OpenLLMetry or
OpenLIT makes a CLIENT span per request, with the usage the response reported. When the
span ends, the CostSpanProcessor attached to the same TracerProvider reads that usage,
prices it as llm_toll prices its own calls (at the span's start) and records it through
the same writer, in the project of the span's ``llm_toll.project`` attribute, else of the
resource's ``llm_toll.project``, else ``default``. Only the cost metrics are recorded: the
instrumentation records its own token and duration metrics.

A request llm_toll recorded itself is never recorded again: spans of llm_toll's own tracer
are skipped, so is a span started inside llm_toll's own request span, and a span whose
``gen_ai.response.id`` another path of llm_toll recorded first (``once.claims``).

Nothing here raises into the span pipeline: a span whose usage cannot be read is a
``UsageWarning`` (once per cause) and is not recorded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from llm_toll._budget.once import claims
from llm_toll._budget.priced import priced_call
from llm_toll._budget.records import PendingWrite
from llm_toll._warnings import Guard, shown, warn_once
from llm_toll.exceptions import AccountingWarning, UsageWarning
from llm_toll.telemetry import _names as attr
from llm_toll.usage._base import ExtractedUsage, Usage, UsageError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Span
    from opentelemetry.util.types import Attributes

    from llm_toll._budget.records import CallRecord
    from llm_toll._budget.writer import CostSpanProcessor

SCOPE: Final = "llm_toll"
"""The instrumentation scope of llm_toll's own spans (``telemetry.providers.SCOPE``)."""
DEFAULT_PROJECT: Final = "default"

# The attribute names read, in order of preference: the GenAI semantic conventions (also
# what opentelemetry-instrumentation-openai-v2, OpenLLMetry 0.48+ and OpenLIT set), then the
# names OpenLLMetry set before it moved to the conventions (0.47 and older: semconv_ai's
# ``LLM_USAGE_*`` and ``LLM_SYSTEM``), then OpenLLMetry's and OpenLIT's reasoning count.
INPUT: Final = (attr.INPUT_TOKENS, "gen_ai.usage.prompt_tokens")
OUTPUT: Final = (attr.OUTPUT_TOKENS, "gen_ai.usage.completion_tokens")
CACHE_READ: Final = (attr.CACHE_READ_TOKENS, "gen_ai.usage.cache_read_input_tokens")
CACHE_CREATION: Final = (
    attr.CACHE_CREATION_TOKENS,
    attr.CACHE_WRITE_TOKENS,
    "gen_ai.usage.cache_creation_input_tokens",
)
REASONING: Final = (
    attr.REASONING_TOKENS,
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
)
MODEL: Final = (attr.RESPONSE_MODEL, attr.REQUEST_MODEL)
PROVIDER: Final = (attr.PROVIDER, "gen_ai.system")
OPERATION: Final = (attr.OPERATION, "llm.request.type")
# OpenLLMetry's ``llm.request.type`` values, as GenAI operation names.
_OPERATIONS: Final = {"completion": "text_completion", "embedding": "embeddings"}
# OpenLIT marks each of its spans ``telemetry.sdk.name=openlit`` (openlit/__helpers.py,
# ``common_span_attributes``) and makes them with the tracer of ``openlit.otel.tracing``.
_OPENLIT: Final = "openlit"
_OPENLIT_SCOPE: Final = "openlit.otel.tracing"
_SDK_NAME: Final = "telemetry.sdk.name"

_enabled = False
# Spans started inside one of llm_toll's request spans: recorded by llm_toll already.
_MAX_INSIDE = 4096
_inside: OrderedDict[int, None] = OrderedDict()
_lock = threading.Lock()
_PRICING = Guard("foreign-span", "price another instrumentation's span", AccountingWarning)


def enable(on: bool) -> None:
    """Price other instrumentations' spans (``setup_telemetry(price_foreign_spans=...)``)."""
    global _enabled
    _enabled = on
    if not on:
        with _lock:
            _inside.clear()


def enabled() -> bool:
    return _enabled


def started(span: Span, parent_context: Context | None) -> None:
    """Note ``span`` when its parent is llm_toll's own request span (CLIENT)."""
    with _PRICING:
        parent = trace.get_current_span(parent_context)
        scope = getattr(parent, "instrumentation_scope", None)
        if scope is None or scope.name != SCOPE or getattr(parent, "kind", None) != SpanKind.CLIENT:
            return
        with _lock:
            _inside[span.get_span_context().span_id] = None
            if len(_inside) > _MAX_INSIDE:
                _inside.popitem(last=False)


def ended(span: ReadableSpan, writer: CostSpanProcessor) -> None:
    """Price and record ``span`` if it is another instrumentation's request with usage."""
    with _PRICING:
        context = span.context
        if context is not None:
            with _lock:
                if _inside.pop(context.span_id, 1) is None:
                    return
        scope = span.instrumentation_scope
        if span.kind != SpanKind.CLIENT or (scope is not None and scope.name == SCOPE):
            return
        call = priced(span)
        if call is None or not claims.claim(call.response_id, "foreign"):
            return
        from llm_toll._worker import worker

        # The store is written off the thread that ended the span (an event loop, maybe).
        worker.submit(_record, writer, call)


def _record(writer: CostSpanProcessor, call: CallRecord) -> None:
    with _PRICING:
        writer.record(None, PendingWrite(call, None), cost_metrics_only=True)


def priced(span: ReadableSpan) -> CallRecord | None:
    """The priced record of ``span``'s request; None when it reports no usage (not a
    request of a GenAI instrumentation), or usage that cannot be read (warned once)."""
    attributes: Mapping[str, object] = span.attributes or {}
    raw_input, raw_output = _first(attributes, INPUT), _first(attributes, OUTPUT)
    if raw_input is None and raw_output is None:
        return None
    name = span.instrumentation_scope.name if span.instrumentation_scope else "unknown"
    model = _text(attributes, MODEL)
    provider = _text(attributes, PROVIDER)
    cache_read = _count(_first(attributes, CACHE_READ))
    cache_creation = _count(_first(attributes, CACHE_CREATION))
    input_tokens = _count(raw_input)
    if _input_excludes_cache(name, attributes, provider):
        input_tokens = _with_cache(input_tokens, cache_read, cache_creation)
    try:
        usage = Usage.checked(
            input_tokens,
            _count(raw_output),
            cache_read_input_tokens=cache_read,
            cache_creation_input_tokens=cache_creation,
            reasoning_output_tokens=_count(_first(attributes, REASONING)),
        )
        if model is None:
            raise UsageError("no model (gen_ai.response.model, gen_ai.request.model)")
    except UsageError as exc:
        warn_once(
            f"foreign-usage:{name}",
            f"llm_toll could not read the usage of a span of {name!r} ({shown(str(exc))}); "
            "it is not recorded.",
            UsageWarning,
        )
        return None
    operation = _text(attributes, OPERATION)
    response_id = _text(attributes, (attr.RESPONSE_ID,))
    found = ExtractedUsage(
        usage,
        model=model,
        provider=provider.lower() if provider else None,
        operation=_OPERATIONS.get(operation, operation) if operation else None,
        response_id=response_id,
    )
    start_ns = span.start_time or 0
    end_ns = span.end_time or start_ns
    call, clamped = priced_call(
        found,
        project=project_of(attributes, span.resource.attributes),
        model=model,
        started_at=datetime.fromtimestamp(start_ns / 1e9, timezone.utc),
        duration_s=max(end_ns - start_ns, 0) / 1e9,
    )
    if clamped:
        warn_once(
            f"foreign-clamped:{model}",
            f"llm_toll priced a span of {name!r} for {model} above what one call's record "
            "holds: recorded at that maximum, marked unpriced.",
            AccountingWarning,
        )
    return call


def project_of(attributes: Mapping[str, object], resource: Attributes) -> str:
    """The span's ``llm_toll.project``, else the resource's, else ``default``."""
    return (
        _text(attributes, (attr.PROJECT,))
        or _text(resource or {}, (attr.PROJECT,))
        or DEFAULT_PROJECT
    )


def _input_excludes_cache(
    scope: str, attributes: Mapping[str, object], provider: str | None
) -> bool:
    """Whether the span's input count leaves cache reads and writes out, as Anthropic's
    ``usage.input_tokens`` does, where the conventions' ``gen_ai.usage.input_tokens``
    includes them. Only OpenLIT's Anthropic spans do: it sets Anthropic's count as is
    (openlit/instrumentation/anthropic/utils.py), while OpenLLMetry adds the cache tokens
    to it (opentelemetry/instrumentation/anthropic/__init__.py, ``_set_token_usage``)."""
    from_openlit = scope == _OPENLIT_SCOPE or attributes.get(_SDK_NAME) == _OPENLIT
    return from_openlit and provider is not None and provider.lower() == "anthropic"


def _with_cache(input_tokens: object, *cached: object) -> object:
    """``input_tokens`` plus the cache counts; as is when one of them is not a count (for
    Usage.checked to refuse with its reason)."""
    counts = [input_tokens, *(0 if count is None else count for count in cached)]
    if all(type(count) is int for count in counts):
        return sum(counts)  # type: ignore[arg-type]
    return input_tokens


def _first(attributes: Mapping[str, object], names: tuple[str, ...]) -> object:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


def _text(attributes: Mapping[str, object], names: tuple[str, ...]) -> str | None:
    value = _first(attributes, names)
    if isinstance(value, str) and value:
        return value
    return None


def _count(value: object) -> object:
    """A count as the attribute holds it: an int; a float with no fraction (some
    instrumentations set doubles) as that int; anything else as is, for Usage.checked to
    refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
