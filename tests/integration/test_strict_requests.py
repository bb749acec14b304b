"""Strict budgets on real requests: each request reserves its own worst case, read from the
request the SDK is about to send; its output cap is set or lowered to what the budget has
left (and the server receives that cap); a stream that runs past its reservation is cut; a
request whose worst case cannot be bounded is refused before it is sent."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import pytest

import llm_toll
from llm_toll import BudgetExceededError, track_costs
from llm_toll._budget.money import usd_to_nanos
from llm_toll._call import request_gate
from llm_toll.demo.replay import ReplayServer
from llm_toll.store import SQLiteStore
from llm_toll.store._time import utc_now
from llm_toll.usage import Usage
from tests.integration.test_decorated_providers import MESSAGES, genai_prices_nanos
from tests.support.otel import Telemetry

LONG_REPLY = " ".join(f"word{n}" for n in range(60))
INCLUDE_USAGE: dict[str, Any] = {"stream_options": {"include_usage": True}}
GPT4O_OUTPUT_TOKEN_NANOS = genai_prices_nanos(Usage(output_tokens=1), "gpt-4o", "openai")


def ask_with(client: Any) -> Any:
    """The README's shape: a function that takes the user's text and nothing else."""

    def answer(question: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": question}]
        )
        return str(reply.choices[0].message.content)

    return answer


def test_a_request_without_a_cap_is_sent_with_one(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    answer = track_costs(project="strict-nocap", max_budget=1.0, strict=True)(
        ask_with(openai_client)
    )
    assert answer("What are the primary colours?")
    sent = replay.last.body
    assert sent["max_completion_tokens"] == request_gate.DEFAULT_OUTPUT_CAP
    assert "max_tokens" not in sent
    [span] = telemetry.requests()
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.max_tokens"] == request_gate.DEFAULT_OUTPUT_CAP
    assert attributes["llm_toll.strict.cap_lowered"] is True
    assert "llm_toll.strict.requested_max_tokens" not in attributes
    [row] = store.get_usage_logs("strict-nocap")
    tokens = replay.last.tokens
    assert tokens is not None
    assert (row["input_tokens"], row["output_tokens"]) == (
        tokens.input_tokens,
        tokens.output_tokens,
    )
    assert row["cost_nanos"] == genai_prices_nanos(tokens, "gpt-4o", "openai")
    assert attributes["llm_toll.strict.reserved"] > row["cost"]  # the worst case, settled
    assert store.get_reserved("strict-nocap", None, utc_now()) == 0


def test_a_cap_the_budget_cannot_pay_is_lowered_to_what_is_left(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    budget = 0.004

    @track_costs(project="strict-lower", max_budget=budget, strict=True)
    def answer(question: str) -> str:
        reply = openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": question}], max_tokens=1000
        )
        return str(reply.choices[0].message.content)

    replay.script(text=" ".join(f"word{n}" for n in range(1200)))  # more than the cap
    answer("Tell me a long story.")
    sent = replay.last.body
    lowered = sent["max_tokens"]
    assert 0 < lowered < 1000
    assert "max_completion_tokens" not in sent  # the caller's own key, lowered
    [span] = telemetry.requests()
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.max_tokens"] == lowered
    assert attributes["llm_toll.strict.requested_max_tokens"] == 1000
    assert attributes["llm_toll.strict.cap_lowered"] is True
    # The cap uses what was left: one more output token would not have fitted.
    reserved = usd_to_nanos(float(attributes["llm_toll.strict.reserved"]))  # type: ignore[arg-type]
    assert usd_to_nanos(budget) - GPT4O_OUTPUT_TOKEN_NANOS < reserved <= usd_to_nanos(budget)
    tokens = replay.last.tokens
    assert tokens is not None and tokens.output_tokens == lowered  # the provider kept to it

    # Call on until refused: the spend never passes the budget, and the refusal comes only
    # once not even a minimal answer fits.
    refused = None
    for _ in range(50):
        try:
            answer("Tell me a long story.")
        except BudgetExceededError as error:
            refused = error
            break
    assert refused is not None
    spent = store.get_spent("strict-lower", None, utc_now())
    assert spent <= usd_to_nanos(budget)
    assert usd_to_nanos(budget) - spent < 300 * GPT4O_OUTPUT_TOKEN_NANOS
    assert store.get_reserved("strict-lower", None, utc_now()) == 0


def test_clamp_false_refuses_instead_of_lowering(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    @track_costs(project="strict-noclamp", max_budget=0.004, strict=True, clamp=False)
    def answer(max_tokens: int | None) -> None:
        cap = {} if max_tokens is None else {"max_tokens": max_tokens}
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **cap)

    with pytest.raises(BudgetExceededError, match="Budget exceeded"):
        answer(1000)  # costs more than the budget has
    with pytest.raises(BudgetExceededError, match="no output cap"):
        answer(None)  # would need a cap set
    assert replay.requests == []
    answer(100)  # fits: sent as it is
    assert replay.last.body["max_tokens"] == 100
    assert store.get_reserved("strict-noclamp", None, utc_now()) == 0


def test_no_room_for_a_minimal_answer_is_refused_before_sending(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any, telemetry: Telemetry
) -> None:
    answer = track_costs(project="strict-tiny", max_budget=0.0001, strict=True)(
        ask_with(openai_client)
    )
    with pytest.raises(BudgetExceededError) as refused:
        answer("What are the primary colours?")
    assert refused.value.project == "strict-tiny"
    assert replay.requests == []
    assert store.get_usage_logs("strict-tiny") == []
    assert store.get_reserved("strict-tiny", None, utc_now()) == 0
    [span] = telemetry.requests()
    assert span.name == "chat gpt-4o"
    assert [event.name for event in span.events] == ["llm_toll.budget.exceeded"]


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        ({"model": "no-such-model-anywhere", "messages": MESSAGES}, "no known price"),
        (
            {
                "model": "gpt-4o",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is in this picture?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://example.com/cat.png"},
                            },
                        ],
                    }
                ],
            },
            "by reference",
        ),
    ],
    ids=["unpriced-model", "image-by-url"],
)
def test_a_request_that_cannot_be_bounded_is_refused_never_checked_plainly(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    request_: dict[str, Any],
    why: str,
) -> None:
    @track_costs(project="strict-unbounded", max_budget=5.0, strict=True)
    def answer() -> None:
        openai_client.chat.completions.create(**request_)

    with pytest.raises(BudgetExceededError, match=why):
        answer()
    assert replay.requests == []
    assert store.get_reserved("strict-unbounded", None, utc_now()) == 0


def openai_responses(client: Any) -> None:
    client.responses.create(model="gpt-4o", input="Name three primary colours.")


def openai_completions(client: Any) -> None:
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Three primary colours:")


def anthropic_messages(client: Any) -> None:
    client.messages.create(model="claude-sonnet-4-6", max_tokens=16_000, messages=MESSAGES)


def gemini_generate(client: Any) -> None:
    client.models.generate_content(model="gemini-2.5-flash", contents="Three primary colours?")


@pytest.mark.parametrize(
    ("client_fixture", "make_request", "cap_path", "own_cap"),
    [
        ("openai_client", openai_responses, ("max_output_tokens",), None),
        ("openai_client", openai_completions, ("max_tokens",), None),
        ("anthropic_client", anthropic_messages, ("max_tokens",), 16_000),
        ("gemini_client", gemini_generate, ("generationConfig", "maxOutputTokens"), None),
    ],
    ids=["openai-responses", "openai-completions", "anthropic-messages", "gemini-generate"],
)
def test_each_provider_receives_the_cap_its_request_was_admitted_with(
    store: SQLiteStore,
    replay: ReplayServer,
    request: pytest.FixtureRequest,
    client_fixture: str,
    make_request: Any,
    cap_path: tuple[str, ...],
    own_cap: int | None,
) -> None:
    client = request.getfixturevalue(client_fixture)
    with llm_toll.run("strict-providers", max_budget=0.02, strict=True):
        make_request(client)
    sent: Any = replay.last.body
    for name in cap_path:
        sent = sent[name]
    assert isinstance(sent, int) and 0 < sent <= request_gate.DEFAULT_OUTPUT_CAP
    if own_cap is not None:
        assert sent < own_cap
    [row] = store.get_usage_logs("strict-providers")
    assert row["cost_nanos"] <= usd_to_nanos(0.02)
    assert store.get_reserved("strict-providers", None, utc_now()) == 0


async def test_an_async_request_is_reserved_off_the_loop_and_capped(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any
) -> None:
    @track_costs(project="strict-async", max_budget=0.004, strict=True)
    async def answer(question: str) -> str:
        reply = await async_openai_client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": question}]
        )
        return str(reply.choices[0].message.content)

    await answer("What are the primary colours?")
    assert 0 < replay.last.body["max_completion_tokens"] < request_gate.DEFAULT_OUTPUT_CAP
    assert len(store.get_usage_logs("strict-async")) == 1
    assert store.get_reserved("strict-async", None, utc_now()) == 0


# -- streams that run past their reservation ------------------------------------------------


def openai_stream(client: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )


def anthropic_stream(client: Any) -> Any:
    return client.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES, stream=True
    )


def gemini_stream(client: Any) -> Any:
    return client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Go on.", config={"max_output_tokens": 5}
    )


@pytest.mark.parametrize(
    ("client_fixture", "open_stream"),
    [
        ("openai_client", openai_stream),
        ("anthropic_client", anthropic_stream),
        ("gemini_client", gemini_stream),
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_a_stream_past_its_reservation_is_cut_and_recorded(
    store: SQLiteStore,
    replay: ReplayServer,
    request: pytest.FixtureRequest,
    client_fixture: str,
    open_stream: Any,
) -> None:
    client = request.getfixturevalue(client_fixture)
    replay.script(text=LONG_REPLY, ignore_cap=True)  # a provider that ignores the cap
    received = 0
    with (  # noqa: PT012 - the error comes mid-stream, from the loop
        pytest.raises(BudgetExceededError, match="ran past"),
        llm_toll.run("strict-cut", max_budget=1.0, strict=True),
    ):
        for _ in open_stream(client):
            received += 1
    assert received < 60  # cut long before the 60 words the provider sent
    [row] = store.get_usage_logs("strict-cut")
    assert row["output_tokens"] > 5  # what came before the cut is recorded
    assert row["cost_nanos"] > 0
    assert store.get_reserved("strict-cut", None, utc_now()) == 0


async def test_an_async_stream_past_its_reservation_is_cut_and_recorded(
    store: SQLiteStore, replay: ReplayServer, async_openai_client: Any, gemini_client: Any
) -> None:
    async def openai_chunks() -> Any:
        return await async_openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=5, stream=True, **INCLUDE_USAGE
        )

    async def gemini_chunks() -> Any:
        return await gemini_client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Go on.", config={"max_output_tokens": 5}
        )

    for project, open_stream in (
        ("strict-acut-oa", openai_chunks),
        ("strict-acut-ge", gemini_chunks),
    ):
        replay.script(text=LONG_REPLY, ignore_cap=True)
        received = 0
        with pytest.raises(BudgetExceededError, match="ran past"):  # noqa: PT012 - mid-stream
            async with llm_toll.run(project, max_budget=1.0, strict=True):
                async for _ in await open_stream():
                    received += 1
        assert received < 60
        [row] = store.get_usage_logs(project)
        assert row["output_tokens"] > 5 and row["cost_nanos"] > 0
        assert store.get_reserved(project, None, utc_now()) == 0


# -- run caps and requests in flight ---------------------------------------------------------


def test_concurrent_requests_never_pass_a_strict_run_cap(
    store: SQLiteStore, replay: ReplayServer, openai_client: Any
) -> None:
    cap = 0.004
    outcomes: list[str] = []
    lock = threading.Lock()

    def ask_until_refused() -> None:
        for _ in range(40):
            try:
                openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            except BudgetExceededError as refused:
                with lock:
                    outcomes.append(refused.scope)
                return
        with lock:
            outcomes.append("never refused")

    with llm_toll.run("strict-run", max_cost=cap, strict=True) as run:
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(ask_until_refused,))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes == ["run"] * 4
    spent = store.get_spent("strict-run", None, utc_now())
    assert spent == usd_to_nanos(run.cost)
    assert spent <= usd_to_nanos(cap)
    assert usd_to_nanos(cap) - spent < 300 * GPT4O_OUTPUT_TOKEN_NANOS  # the cap was used


def test_a_request_waits_for_room_held_by_a_request_in_flight(
    store: SQLiteStore,
    replay: ReplayServer,
    openai_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream held open holds its reservation; a second request whose worst case fits
    what is left, but not beside it, waits for it instead of being refused or truncated."""
    waiting = threading.Event()
    original_wait = request_gate.RequestGate._wait

    def wait(gate: request_gate.RequestGate) -> BudgetExceededError | float:
        waiting.set()
        return original_wait(gate)

    monkeypatch.setattr(request_gate.RequestGate, "_wait", wait)
    second: list[Any] = []

    def ask_second() -> None:
        try:
            openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=300)
            second.append(replay.last.body["max_tokens"])
        except BaseException as error:
            second.append(error)

    with llm_toll.run("strict-wait", max_budget=0.005, strict=True):
        first = openai_client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            max_tokens=300,
            stream=True,
            stream_options={"include_usage": True},
        )
        thread = threading.Thread(target=contextvars.copy_context().run, args=(ask_second,))
        thread.start()
        try:
            assert waiting.wait(timeout=60), "the second request never had to wait"
            assert second == []  # still waiting, not refused
            assert len(replay.requests) == 1
        finally:
            for _ in first:  # the first settles at its real cost, far below its worst case
                pass
            thread.join()
    assert second == [300]  # sent with its own cap: nothing was truncated
    assert len(store.get_usage_logs("strict-wait")) == 2
    assert store.get_reserved("strict-wait", None, utc_now()) == 0
