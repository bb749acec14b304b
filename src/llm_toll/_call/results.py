"""What a call returned, read as usage: the user's ``extract_usage``, then auto-detection,
then an estimate from the text, flagged as such."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llm_toll._call.plan import Plan
from llm_toll._warnings import warn_once
from llm_toll.exceptions import UsageWarning
from llm_toll.usage import (
    ExtractedUsage,
    StreamAccumulator,
    UsageError,
    estimate_usage,
    extract_usage,
    request_text,
    response_text,
)
from llm_toll.usage._fields import get
from llm_toll.usage.custom import coerce_custom_usage


class CallResults:
    """Reads the usage of one call's result, with the call's arguments at hand for an
    estimate of its prompt."""

    __slots__ = ("args", "kwargs", "plan")

    def __init__(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.plan = plan
        self.args = args
        self.kwargs = kwargs

    def of_response(self, response: Any) -> ExtractedUsage | None:
        """The usage of a plain result: the user's extractor, then auto-detection, then an
        estimate from the text; None (with a warning) when there is nothing to go on."""
        if self.plan.extract_usage is not None:
            try:
                returned = self.plan.extract_usage(response)
            except Exception as exc:  # worded as llm-toll 0.13 did, for warning filters
                self.warn(
                    "extract_usage", f"its extract_usage callback raised an exception ({exc!r})"
                )
            else:
                try:
                    custom = coerce_custom_usage(returned)
                except Exception as exc:
                    self.warn("extract_usage", f"its extract_usage failed ({exc!r})")
                else:
                    if custom is not None:
                        return custom
        try:
            found = extract_usage(response)
        except UsageError as exc:
            self.warn("bad-usage", f"its response carried unusable usage ({exc})")
            return self.estimate(response_text(response), reported_model(response))
        if found is not None:
            return found
        if isinstance(response, str):
            self.warn("text-result", "it returned text without usage; usage is estimated")
            return self.estimate(response, None)
        self.warn(
            "no-usage",
            f"no token usage was found in its {type(response).__name__} result, so the call "
            "is not recorded; pass extract_usage= to tell llm_toll where usage is",
        )
        return None

    def of_stream(
        self, stream: StreamAccumulator, request_hint: str = "", *, cut: bool = False
    ) -> ExtractedUsage:
        """The usage a finished stream reported, else an estimate from its text.

        ``request_hint`` is the prompt text when the wrapped function's arguments do not
        show it (read from the SDK stream's own HTTP request). ``cut``: llm_toll closed the
        stream at its reservation, before the provider could report usage (not warned).
        """
        try:
            found = stream.result()
        except UsageError as exc:
            self.warn("stream-usage", f"its stream reported unusable usage ({exc})")
            found = None
        if found is not None:
            return found
        if not cut:
            self.warn(
                "stream-no-usage",
                "its stream did not report usage (for OpenAI pass "
                "stream_options={'include_usage': True}); usage is estimated from the text",
            )
        found = self.estimate(stream.text, stream.model, request_hint)
        usage = found.usage
        if usage.output_tokens < stream.text_pieces:  # each piece is a token at least
            usage = replace(usage, output_tokens=stream.text_pieces)
        return replace(  # what the stream did say
            found,
            usage=usage,
            provider=found.provider or stream.provider,
            operation=found.operation or stream.operation,
            response_id=found.response_id or stream.response_id,
        )

    def estimate(
        self, completion: str, model: str | None, request_hint: str = ""
    ) -> ExtractedUsage:
        prompt = request_text(self.args, self.kwargs) or request_hint
        return estimate_usage(prompt, completion, model)

    def warn(self, cause: str, problem: str) -> None:
        plan = self.plan
        warn_once(
            f"{cause}:{plan.name}",
            f"llm_toll: a call of {plan.name}() in project '{plan.project}': {problem}.",
            UsageWarning,
        )


def reported_model(response: object) -> str | None:
    """The model a response names, to price an estimate by (OpenAI, Anthropic, Gemini)."""
    for name in ("model", "model_version", "modelVersion"):
        value = get(response, name)
        if isinstance(value, str) and value:
            return value
    return None
