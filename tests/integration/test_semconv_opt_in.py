"""Today's GenAI names by default; the conventions' v0.1.0 names, and not today's, under
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``: spans and metrics of a real
openai call with cached, cache-written and reasoning tokens, and of a call whose usage
reports audio tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

import llm_toll
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from llm_toll.telemetry import _semconv as semconv
from llm_toll.usage import ExtractedUsage, Usage
from tests.integration.test_decorated_providers import MESSAGES
from tests.support.otel import Telemetry

OLD_METRICS = ("gen_ai.client.token.usage", "gen_ai.client.operation.duration")
NEW_METRICS = (
    "gen_ai.client.inference.duration",
    "gen_ai.client.inference.usage.input_tokens",
    "gen_ai.client.inference.usage.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens",
    "gen_ai.client.inference.usage.cache_write.input_tokens",
    "gen_ai.client.inference.usage.reasoning.output_tokens",
    "gen_ai.client.inference.operation.input_tokens",
    "gen_ai.client.inference.operation.output_tokens",
)


@pytest.fixture(params=["default", "latest"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "latest":
        # A list, as the OpenTelemetry instrumentations read it: items stripped.
        monkeypatch.setenv(semconv.OPT_IN_ENV, "http, gen_ai_latest_experimental ,database")
    else:
        monkeypatch.setenv(semconv.OPT_IN_ENV, "http,gen_ai_latest_experimentalx")
    assert semconv.refresh() is (request.param == "latest")
    yield request.param
    monkeypatch.undo()
    semconv.refresh()


def totals(telemetry: Telemetry, model: str) -> dict[tuple[str, str | None], float]:
    """Sums of every token and duration metric of ``model``, by (metric, modality or type)."""
    found: dict[tuple[str, str | None], float] = {}
    for name in OLD_METRICS + NEW_METRICS:
        for point in telemetry.points(name):
            if point.attributes.get("gen_ai.request.model") != model:
                continue
            label = point.attributes.get("gen_ai.token.modality") or point.attributes.get(
                "gen_ai.token.type"
            )
            value = point.value if hasattr(point, "value") else point.sum
            if name.endswith("duration"):
                value = point.count
            found[name, label] = found.get((name, label), 0) + value
    return found


def added(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def test_openai_call_with_cache_writes_and_reasoning(
    mode: str,
    openai_client: openai.OpenAI,
    replay: ReplayServer,
    store: SQLiteStore,
    telemetry: Telemetry,
) -> None:
    before = totals(telemetry, "gpt-4o")
    replay.script(cached_tokens=10, cache_creation_tokens=15, reasoning_tokens=5)
    with llm_toll.run("semconv"):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    sent = replay.last.tokens
    assert sent is not None and sent.cache_creation_input_tokens == 15

    span = telemetry.span().attributes or {}
    assert span["gen_ai.usage.input_tokens"] == sent.input_tokens
    assert span["gen_ai.usage.cache_read.input_tokens"] == 10
    assert span["gen_ai.usage.reasoning.output_tokens"] == 5
    written = {"default": "gen_ai.usage.cache_creation.input_tokens",
               "latest": "gen_ai.usage.cache_write.input_tokens"}  # fmt: skip
    assert span[written[mode]] == 15
    assert set(written.values()) & set(span) == {written[mode]}

    inputs, outputs = sent.input_tokens, sent.output_tokens
    if mode == "default":
        expected = {
            ("gen_ai.client.token.usage", "input"): inputs,
            ("gen_ai.client.token.usage", "output"): outputs,
            ("gen_ai.client.operation.duration", None): 1,
        }
    else:
        expected = {
            ("gen_ai.client.inference.duration", None): 1,
            ("gen_ai.client.inference.usage.input_tokens", "text"): inputs,
            ("gen_ai.client.inference.usage.output_tokens", "text"): outputs,
            ("gen_ai.client.inference.usage.cache_read.input_tokens", "text"): 10,
            ("gen_ai.client.inference.usage.cache_write.input_tokens", "text"): 15,
            ("gen_ai.client.inference.usage.reasoning.output_tokens", "text"): 5,
            ("gen_ai.client.inference.operation.input_tokens", None): inputs,
            ("gen_ai.client.inference.operation.output_tokens", None): outputs,
        }
    assert added(before, totals(telemetry, "gpt-4o")) == expected
    assert telemetry.sum_for("gen_ai.client.operation.cost", **{"gen_ai.request.model": "gpt-4o"})


def test_audio_tokens_by_modality(mode: str, store: SQLiteStore, telemetry: Telemetry) -> None:
    """Usage reporting audio parts of its counts (under genai-prices' unit names)."""
    model = "gpt-4o-audio-preview"
    usage = Usage.checked(
        120,
        40,
        cache_read_input_tokens=20,
        units={"input_audio_tokens": 50, "cache_audio_read_tokens": 8, "output_audio_tokens": 30},
    )

    @llm_toll.track_costs(project="semconv-audio", extract_usage=lambda _: ExtractedUsage(
        usage, model=model, provider="openai", operation="chat"))  # fmt: skip
    def speak() -> str:
        return "spoken"

    before = totals(telemetry, model)
    speak()
    span = telemetry.span().attributes or {}
    audio = {
        "gen_ai.usage.audio.input_tokens": 50,
        "gen_ai.usage.audio.cache_read.input_tokens": 8,
        "gen_ai.usage.audio.output_tokens": 30,
    }
    if mode == "default":
        assert not set(audio) & set(span)
        assert added(before, totals(telemetry, model)) == {
            ("gen_ai.client.token.usage", "input"): 120,
            ("gen_ai.client.token.usage", "output"): 40,
            ("gen_ai.client.operation.duration", None): 1,
        }
        return
    assert {k: span.get(k) for k in audio} == audio
    assert added(before, totals(telemetry, model)) == {
        ("gen_ai.client.inference.duration", None): 1,
        ("gen_ai.client.inference.usage.input_tokens", "audio"): 50,
        ("gen_ai.client.inference.usage.input_tokens", "text"): 70,
        ("gen_ai.client.inference.usage.output_tokens", "audio"): 30,
        ("gen_ai.client.inference.usage.output_tokens", "text"): 10,
        ("gen_ai.client.inference.usage.cache_read.input_tokens", "audio"): 8,
        ("gen_ai.client.inference.usage.cache_read.input_tokens", "text"): 12,
        ("gen_ai.client.inference.operation.input_tokens", None): 120,
        ("gen_ai.client.inference.operation.output_tokens", None): 40,
    }
