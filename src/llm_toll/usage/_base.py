"""The provider-neutral usage value every extractor produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from llm_toll._warnings import shown

# More tokens than any model accepts in one call: a count above this is garbage, not usage.
MAX_TOKENS_PER_CALL = 100_000_000

NO_UNITS: Mapping[str, int] = MappingProxyType({})
NO_CONTEXT: Mapping[str, str] = MappingProxyType({})


class UsageError(ValueError):
    """A response carried usage that cannot be trusted (missing, negative, not an integer...)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, normalised across providers.

    ``input_tokens`` includes cached tokens (read and written); ``output_tokens`` includes
    reasoning tokens. This is the convention of the OpenTelemetry GenAI semantic conventions
    and of genai-prices, so neither has to re-derive it.

    ``units`` holds every other priced unit the provider reported, under genai-prices'
    usage keys, non-zero counts only: parts of the counts above (``cache_write_1h_tokens``,
    ``input_audio_tokens``, ``input_image_tokens``...) and units apart from tokens
    (``web_searches``, ``code_executions``...). Text tokens are never listed: they are
    what remains of each count.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    units: Mapping[str, int] = field(default_factory=lambda: NO_UNITS)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def checked(
        cls,
        input_tokens: object = 0,
        output_tokens: object = 0,
        *,
        cache_read_input_tokens: object = 0,
        cache_creation_input_tokens: object = 0,
        reasoning_output_tokens: object = 0,
        units: object = None,
    ) -> Usage:
        """Build a Usage from raw values, raising UsageError with a clear reason if any is bad.

        ``None`` counts as 0 for the optional detail fields only; the two main counts must be
        present.
        """
        return cls.from_counts(
            _count("input_tokens", input_tokens, required=True),
            _count("output_tokens", output_tokens, required=True),
            cache_read_input_tokens=_count("cache_read_input_tokens", cache_read_input_tokens),
            cache_creation_input_tokens=_count(
                "cache_creation_input_tokens", cache_creation_input_tokens
            ),
            reasoning_output_tokens=_count("reasoning_output_tokens", reasoning_output_tokens),
            units=checked_units(units),
        )

    def checked_copy(self) -> Usage:
        """This usage as ``checked`` would build it: for a Usage made by hand, whose counts
        were never checked (raises UsageError)."""
        return Usage.checked(
            self.input_tokens,
            self.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens,
            reasoning_output_tokens=self.reasoning_output_tokens,
            units=self.units,
        )

    @classmethod
    def from_counts(
        cls,
        input_tokens: int,
        output_tokens: int,
        *,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        reasoning_output_tokens: int = 0,
        units: Mapping[str, int] = NO_UNITS,
    ) -> Usage:
        """From counts already validated one by one: only the checks across fields (and of
        totals an extractor added up, such as Anthropic's input plus cache tokens)."""
        # Spelled out, not looped over pairs: this runs on every tracked call.
        if input_tokens > MAX_TOKENS_PER_CALL:
            raise UsageError(f"input_tokens is implausibly large: {input_tokens}")
        if output_tokens > MAX_TOKENS_PER_CALL:
            raise UsageError(f"output_tokens is implausibly large: {output_tokens}")
        cached = cache_read_input_tokens + cache_creation_input_tokens
        if cached > input_tokens:
            raise UsageError(f"cached input tokens ({cached}) exceed input tokens ({input_tokens})")
        if reasoning_output_tokens > output_tokens:
            raise UsageError(
                f"reasoning tokens ({reasoning_output_tokens}) exceed output tokens "
                f"({output_tokens})"
            )
        for key, part in units.items():
            whole = _whole_of(key, input_tokens, output_tokens)
            if whole is not None and part > whole[1]:
                raise UsageError(f"{key} ({part}) exceeds {whole[0]} ({whole[1]})")
        return cls(
            input_tokens,
            output_tokens,
            cache_read_input_tokens,
            cache_creation_input_tokens,
            reasoning_output_tokens,
            units,
        )


def _whole_of(key: str, input_tokens: int, output_tokens: int) -> tuple[str, int] | None:
    """The count a unit of tokens is part of (by genai-prices' naming), None for other units."""
    if not key.endswith("_tokens"):
        return None
    if key.startswith(("input_", "cache_")):
        return "input_tokens", input_tokens
    if key.startswith("output_"):
        return "output_tokens", output_tokens
    return None


def checked_units(units: object) -> Mapping[str, int]:
    """``units`` as a read-only mapping of non-zero counts, or UsageError if any is bad."""
    if units is None:
        return NO_UNITS
    if not isinstance(units, Mapping):
        raise UsageError(f"units is not a mapping: {shown(units)}")
    counts: dict[str, int] = {}
    for key, value in units.items():
        if not isinstance(key, str) or not key:
            raise UsageError(f"a unit's name is not a string: {shown(key)}")
        count = _count(key, value)
        if count:
            counts[key] = count
    return MappingProxyType(counts) if counts else NO_UNITS


def _count(name: str, value: object, *, required: bool = False) -> int:
    if value is None:
        if required:
            raise UsageError(f"{name} is missing")
        return 0
    # bool is an int subclass, and a float that happens to be whole is still not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} is not an integer: {shown(value)}")
    if value < 0:
        raise UsageError(f"{name} is negative: {shown(value)}")
    if value > MAX_TOKENS_PER_CALL:
        raise UsageError(f"{name} is implausibly large: {shown(value)}")
    return int(value)  # an int subclass (an IntEnum...) is stored as the plain int


@dataclass(frozen=True, slots=True)
class ExtractedUsage:
    """What an extractor read from a response (or a finished stream)."""

    usage: Usage
    model: str | None = None
    """The model the provider says answered (``gen_ai.response.model``)."""
    provider: str | None = None
    """Semantic-convention provider name: ``openai``, ``anthropic``, ``gcp.gemini``..."""
    operation: str | None = None
    """``chat``, ``generate_content``, ``text_completion`` or ``embeddings``."""
    response_id: str | None = None
    estimated: bool = False
    """True when the counts were estimated from text, not reported by the provider."""
    price_context: Mapping[str, str] = field(default_factory=lambda: NO_CONTEXT)
    """What the provider says decides the price, under genai-prices' price-context keys:
    ``service_tier`` as served (``flex``, ``priority``...), ``processing`` (``batch``)."""
    provider_cost_nanos: int | None = None
    """The cost the response itself reports (OpenRouter's ``usage.cost``...), when it does."""
