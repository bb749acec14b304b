"""A cost the response reports itself: OpenRouter's ``usage.cost`` read by the real openai
SDK from the replay server, and LiteLLM's ``response_cost`` through ``litellm.completion``.
The ledger holds the provider's figure, the span says so and carries llm_toll's own price
beside it, and ``llm_toll.cost.difference`` adds up provider minus local."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest

import llm_toll
from llm_toll._budget.money import nanos_to_usd, usd_to_nanos
from llm_toll.demo.replay import ReplayServer
from llm_toll.exceptions import UsageWarning
from llm_toll.store import SQLiteStore
from tests.integration.test_decorated_providers import MESSAGES, genai_prices_nanos
from tests.support.otel import Telemetry

OPENROUTER_COST = 0.0123  # far from what genai-prices charges for gpt-4o's few tokens


def ask(client: openai.OpenAI, project: str) -> None:
    with llm_toll.run(project):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]


def test_openrouter_usage_cost_is_the_recorded_cost(
    openai_client: openai.OpenAI, replay: ReplayServer, store: SQLiteStore, telemetry: Telemetry
) -> None:
    before = telemetry.sum_for("llm_toll.cost.difference", **{"gen_ai.request.model": "gpt-4o"})
    replay.script(usage={"cost": OPENROUTER_COST})
    ask(openai_client, "openrouter")

    [row] = store.get_usage_logs("openrouter")
    assert row["cost_nanos"] == usd_to_nanos(OPENROUTER_COST)
    sent = replay.last.tokens
    assert sent is not None
    local = genai_prices_nanos(sent, "gpt-4o", "openai")
    assert 0 < local != row["cost_nanos"]
    span = telemetry.span().attributes or {}
    assert span["gen_ai.usage.cost.source"] == "provider"
    assert span["gen_ai.usage.cost.amount"] == pytest.approx(OPENROUTER_COST)
    assert span["llm_toll.cost.local"] == pytest.approx(nanos_to_usd(local))
    assert span["llm_toll.price.known"] is True
    difference = telemetry.sum_for(
        "llm_toll.cost.difference",
        **{"gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai"},
    )
    assert difference - before == pytest.approx(OPENROUTER_COST - nanos_to_usd(local))


@pytest.mark.parametrize("cost", ["0.5", -0.25, float("nan"), True, {"usd": 1}])
def test_a_malformed_usage_cost_is_ignored_with_a_warning(
    openai_client: openai.OpenAI,
    replay: ReplayServer,
    store: SQLiteStore,
    telemetry: Telemetry,
    cost: Any,
) -> None:
    replay.script(usage={"cost": cost})
    with pytest.warns(UsageWarning, match=r"usage\.cost is not a cost"):
        ask(openai_client, "openrouter-bad")

    [row] = store.get_usage_logs("openrouter-bad")
    sent = replay.last.tokens
    assert sent is not None
    assert row["cost_nanos"] == genai_prices_nanos(sent, "gpt-4o", "openai")
    span = telemetry.span().attributes or {}
    assert span["gen_ai.usage.cost.source"] == "local"
    assert "llm_toll.cost.local" not in span


def test_a_response_without_cost_is_priced_locally(
    openai_client: openai.OpenAI, replay: ReplayServer, store: SQLiteStore, telemetry: Telemetry
) -> None:
    ask(openai_client, "no-provider-cost")
    [row] = store.get_usage_logs("no-provider-cost")
    sent = replay.last.tokens
    assert sent is not None
    assert row["cost_nanos"] == genai_prices_nanos(sent, "gpt-4o", "openai")
    assert (telemetry.span().attributes or {})["gen_ai.usage.cost.source"] == "local"


# -- LiteLLM ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def litellm_module() -> Any:
    """litellm, reading its bundled price map (tests/conftest.py) rather than fetching one."""
    return pytest.importorskip("litellm")


def test_litellm_response_cost_is_the_recorded_cost(
    litellm_module: Any, replay: ReplayServer, store: SQLiteStore, telemetry: Telemetry
) -> None:
    litellm = litellm_module
    before = telemetry.sum_for("llm_toll.cost.difference", **{"gen_ai.request.model": "gpt-4o"})
    recorded = threading.Event()

    class Callback(llm_toll.LiteLLMCallback):
        """LiteLLM calls back from a thread of its own: the test waits for the record."""

        def log_success_event(
            self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            try:
                super().log_success_event(kwargs, response_obj, start_time, end_time)
            finally:
                recorded.set()

    callback = Callback(project="litellm-cost")
    saved = litellm.callbacks
    litellm.callbacks = [callback]
    try:
        response = litellm.completion(
            model="openai/gpt-4o",
            messages=MESSAGES,
            api_base=replay.base_url + "/v1",
            api_key="test",
            max_retries=0,
            # LiteLLM's own price for this call, unlike genai-prices': the figures differ.
            input_cost_per_token=1e-3,
            output_cost_per_token=2e-3,
        )
        assert recorded.wait(60), "LiteLLM never called the callback"
    finally:
        # LiteLLM keeps the callbacks it has seen in lists of its own: a callback left there
        # would record later tests' LiteLLM calls into their stores.
        litellm.logging_callback_manager._reset_all_callbacks()
        litellm.callbacks = saved

    response_cost = response._hidden_params["response_cost"]
    assert isinstance(response_cost, float) and response_cost > 0
    [row] = store.get_usage_logs("litellm-cost")
    assert row["cost_nanos"] == usd_to_nanos(response_cost)
    sent = replay.last.tokens
    assert sent is not None
    assert response_cost == pytest.approx(sent.input_tokens * 1e-3 + sent.output_tokens * 2e-3)
    assert (row["input_tokens"], row["output_tokens"]) == (sent.input_tokens, sent.output_tokens)
    span = telemetry.span().attributes or {}
    assert span["gen_ai.usage.cost.source"] == "provider"
    local = span["llm_toll.cost.local"]
    assert local == pytest.approx(nanos_to_usd(genai_prices_nanos(sent, "gpt-4o", "openai")))
    assert isinstance(local, float) and 0 < local < response_cost
    difference = telemetry.sum_for("llm_toll.cost.difference", **{"gen_ai.request.model": "gpt-4o"})
    assert difference - before == pytest.approx(response_cost - local)


def test_openrouter_usage_cost_in_a_streams_final_chunk_is_the_recorded_cost(
    openai_client: openai.OpenAI, replay: ReplayServer, store: SQLiteStore
) -> None:
    replay.script(usage={"cost": OPENROUTER_COST})
    with llm_toll.run("openrouter-stream"):
        stream = openai_client.chat.completions.create(  # type: ignore[call-overload]
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass

    [row] = store.get_usage_logs("openrouter-stream")
    assert row["cost_nanos"] == usd_to_nanos(OPENROUTER_COST)
