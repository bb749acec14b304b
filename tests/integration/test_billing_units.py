"""Every priced unit a provider reports, priced as genai-prices prices it.

Each answer of the table (``tests.support.payloads``: the providers' documented JSON, with
service tiers, audio / image / video tokens, 1-hour cache writes, hosted-tool calls,
tool-use prompt tokens, thoughts) is served by the replay server to the real openai,
anthropic or google-genai client, whole and streamed, inside a ``@track_costs`` function.
The ledger's cost must equal, to the nano-USD, genai-prices' own price of the same answer:
its ``extract_usage`` of the whole answer, priced by ``calc_price`` in the price context
the answer says it was served in, at the call's start.

genai-prices' OpenAI Responses extractor reads no hosted-tool call; OpenAI bills them per
call (web searches: the billable ``tool_usage.web_search.num_requests``, or the search
actions; file searches: each call), so the reference adds them (``Billed.billed``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import genai_prices
import pytest

from llm_toll import track_costs
from llm_toll._budget.money import usd_to_nanos
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from tests.support.payloads import CASES, Billed, events

PROVIDER_IDS = {
    "chat": ("openai", "chat"),
    "responses": ("openai", "responses"),
    "messages": ("anthropic", "default"),
    "generate_content": ("google", "default"),
}
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def reference_nanos(case: Billed, at: datetime, *, units: bool = True) -> int:
    """genai-prices' price of the whole answer; ``units=False``: of its five counts alone,
    outside any price context (what llm_toll charged before it read units)."""
    provider_id, flavor = PROVIDER_IDS[case.api]
    usage = genai_prices.extract_usage(case.body, provider_id=provider_id, api_flavor=flavor).usage
    if units:
        usage = genai_prices.Usage(**{**vars(usage), **case.billed})
        context = case.context or None
    else:
        usage = genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        context = None
    priced = genai_prices.calc_price(
        usage,
        case.body.get("model") or case.body["modelVersion"],
        provider_id=provider_id,
        genai_request_timestamp=at,
        price_context=context,
    )
    return usd_to_nanos(priced.total_price)


def request(case: Billed, clients: dict[str, Any], stream: bool) -> Any:
    """The SDK call that receives ``case``'s answer; a stream is read to its end."""
    model = case.body.get("model") or case.body["modelVersion"]
    if case.api == "chat":
        extra: dict[str, Any] = (
            {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
        )
        result = clients["openai"].chat.completions.create(model=model, messages=MESSAGES, **extra)
    elif case.api == "responses":
        result = clients["openai"].responses.create(
            model=model, input="What is the capital of France?", stream=stream
        )
    elif case.api == "messages":
        result = clients["anthropic"].messages.create(
            model=model, max_tokens=1024, messages=MESSAGES, stream=stream
        )
    else:
        models = clients["gemini"].models
        call = models.generate_content_stream if stream else models.generate_content
        result = call(model=model, contents="What does this recording say?")
    return list(result) if stream else result


def started_at(row: dict[str, Any]) -> datetime:
    created = row["created_at"]
    return created if isinstance(created, datetime) else datetime.fromisoformat(created)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_recorded_cost_is_genai_prices_price_of_every_unit(
    name: str,
    stream: bool,
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    anthropic_client: Any,
    gemini_client: Any,
) -> None:
    case = CASES[name]
    clients = {"openai": openai_client, "anthropic": anthropic_client, "gemini": gemini_client}
    project = f"billed-{name}-{'stream' if stream else 'whole'}"
    replay.script(body=events(case.api, case.body) if stream else case.body)

    @track_costs(project=project)
    def ask() -> Any:
        return request(case, clients, stream)

    ask()

    [row] = store.get_usage_logs(project)
    assert not row["estimated"]
    at = started_at(row)
    expected = reference_nanos(case, at)
    assert row["cost_nanos"] == expected > 0
    plain = reference_nanos(case, at, units=False)
    if case.matters:  # the units and context of this answer change its price
        assert expected != plain
    else:
        assert expected == plain
