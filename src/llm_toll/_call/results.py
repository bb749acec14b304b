"""What a call returned, read as usage: the user's ``extract_usage``, then auto-detection,
then an estimate from the text, flagged as such."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from llm_toll._call.plan import Plan
from llm_toll._warnings import raise_if_warning, shown, warn_once
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
from llm_toll.usage._custom import coerce_custom_usage
from llm_toll.usage._fields import get


class CallResults:
    """Reads the usage of one call's result, with the call's arguments at hand for an
    estimate of its prompt."""

    __slots__ = ("answered", "args", "kwargs", "plan")

    def __init__(
        self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any], *, answered: bool = False
    ) -> None:
        self.plan = plan
        self.args = args
        self.kwargs = kwargs
        self.answered = answered
        """The result is a provider's answer to a request a hook saw sent: a call, whatever
        it looks like (a result that is no LLM response is recorded, estimated)."""

    def of_response(self, response: Any) -> ExtractedUsage | None:
        """The usage of a plain result: the user's extractor, then auto-detection, then an
        estimate from the text; None (with a warning) when the result is no LLM response,
        nothing failed reading it and no hook saw it answer a request.

        Never raises (but for a warning the app's filters turn into an error): this is the
        one guard of reading a result. A result whose reading raises (a proxy, a lazy SDK
        field) is recorded with usage estimated from what can be read.
        """
        try:
            return self._of_response(response)
        except Exception as exc:
            raise_if_warning(exc)
            self.warn(
                "unreadable",
                f"reading its result raised {type(exc).__name__}; usage is estimated",
            )
            return self.estimate(response_text(response), None)

    def _of_response(self, response: Any) -> ExtractedUsage | None:
        extractor_failed = False
        if self.plan.extract_usage is not None:
            try:
                returned = self.plan.extract_usage(response)
            except Exception as exc:  # worded as llm-toll 0.13 did, for warning filters
                extractor_failed = True
                self.warn(
                    "extract_usage",
                    f"its extract_usage callback raised an exception ({shown(exc)})",
                )
            else:
                try:
                    custom = coerce_custom_usage(returned)
                except Exception as exc:
                    extractor_failed = True
                    self.warn("extract_usage", f"its extract_usage failed ({shown(exc)})")
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
        if extractor_failed or self.answered:  # a call all the same
            self.warn("unrecognised", "its result is no LLM response; usage is estimated")
            return self.estimate(response_text(response), None)
        self.warn(
            "no-usage",
            f"no token usage was found in its {type(response).__name__} result, so the call "
            "is not recorded; pass extract_usage= to tell llm_toll where usage is",
        )
        return None

    def of_stream(
        self,
        stream: StreamAccumulator,
        request_hint: Callable[[], str] = lambda: "",
        *,
        cut: bool = False,
    ) -> ExtractedUsage:
        """The usage a finished stream reported, else an estimate from its text.

        ``request_hint`` gives the prompt text when the wrapped function's arguments do not
        show it (read from the SDK stream's own HTTP request); called only for an estimate.
        ``cut``: llm_toll closed the stream at its reservation, before the provider could
        report usage (not warned). Never raises, as :meth:`of_response`.
        """
        try:
            found = stream.result()
        except Exception as exc:
            raise_if_warning(exc)
            reason = exc if isinstance(exc, UsageError) else shown(exc)
            self.warn("stream-usage", f"its stream reported unusable usage ({reason})")
        else:
            if found is not None:
                return found
            if not cut:
                self.warn(
                    "stream-no-usage",
                    "its stream did not report usage (for OpenAI pass "
                    "stream_options={'include_usage': True}); usage is estimated from the text",
                )
        found = self.estimate(stream.text, stream.model, request_hint())
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
