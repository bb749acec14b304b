"""``llm_toll.record_batch`` with what the real SDKs return for a batch's results: priced at
genai-prices' batch rates, errored results not charged, nothing recorded twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import genai_prices
import openai
import pytest

import llm_toll
from llm_toll._budget.money import usd_to_nanos
from llm_toll.store import SQLiteStore
from tests.support.batch_files import BatchFiles, batch_files
from tests.support.otel import Telemetry

BATCH = {"processing": "batch"}


def chat_line(n: int, model: str, prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "id": f"batch_req_{n:04d}",
        "custom_id": f"request-{n}",
        "response": {
            "status_code": 200,
            "request_id": f"req_{n:04d}",
            "body": {
                "id": f"chatcmpl-batch{n:04d}",
                "object": "chat.completion",
                "created": 1767607200,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Red, yellow, blue."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "prompt_tokens_details": {"cached_tokens": cached},
                },
            },
        },
        "error": None,
    }


EMBEDDINGS_LINE = {
    "id": "batch_req_0003",
    "custom_id": "request-3",
    "response": {
        "status_code": 200,
        "request_id": "req_0003",
        "body": {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 4000, "total_tokens": 4000},
        },
    },
    "error": None,
}
ERROR_LINE = {
    "id": "batch_req_0004",
    "custom_id": "request-4",
    "response": None,
    "error": {"code": "batch_expired", "message": "This request could not be executed."},
}
FAILED_LINE = {
    "id": "batch_req_0005",
    "custom_id": "request-5",
    "response": {
        "status_code": 400,
        "request_id": "req_0005",
        "body": {"error": {"message": "bad", "type": "invalid_request_error"}},
    },
    "error": None,
}
OPENAI_LINES = [
    chat_line(1, "gpt-4o-mini-2024-07-18", 12_000, 800, cached=4096),
    chat_line(2, "gpt-4o-2024-08-06", 5_000, 1_200),
    EMBEDDINGS_LINE,
    ERROR_LINE,
    FAILED_LINE,
]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def message(n: int, model: str, uncached: int, output: int, read: int = 0) -> dict[str, Any]:
    return {
        "id": f"msg_batch{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Red, yellow and blue."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": uncached,
            "output_tokens": output,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": 0,
        },
    }


ANTHROPIC_LINES = [
    {
        "custom_id": "a-1",
        "result": {"type": "succeeded", "message": message(1, "claude-sonnet-4-5", 9_000, 700)},
    },
    {
        "custom_id": "a-2",
        "result": {
            "type": "succeeded",
            "message": message(2, "claude-3-5-haiku-20241022", 3_000, 400, read=2_000),
        },
    },
    {
        "custom_id": "a-3",
        "result": {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "bad request"},
            },
        },
    },
    {"custom_id": "a-4", "result": {"type": "expired"}},
]


def genai_nanos(
    model: str, provider: str, inp: int, out: int, read: int = 0, context: Any = BATCH
) -> int:
    usage = genai_prices.Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read)
    priced = genai_prices.calc_price(usage, model, provider_id=provider, price_context=context)
    return usd_to_nanos(priced.total_price)


@pytest.fixture
def served() -> Iterator[BatchFiles]:
    with batch_files() as files:
        files.files["file-out-1"] = jsonl(OPENAI_LINES)
        files.batches["msgbatch_1"] = jsonl(ANTHROPIC_LINES)
        yield files


@pytest.fixture
def oai(served: BatchFiles) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served.base_url + "/v1", api_key="test", max_retries=0) as c:
        yield c


@pytest.fixture
def claude(served: BatchFiles) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=served.base_url, api_key="test", max_retries=0) as c:
        yield c


def rows_by_response(store: SQLiteStore, project: str) -> dict[str, dict[str, Any]]:
    return {row["response_id"]: row for row in store.get_usage_logs(project, limit=100)}


def test_openai_output_file_priced_at_batch_rates(
    store: SQLiteStore, served: BatchFiles, oai: openai.OpenAI, telemetry: Telemetry
) -> None:
    content = oai.files.content("file-out-1")
    summary = llm_toll.record_batch(content, project="nightly")
    assert served.paths == ["/v1/files/file-out-1/content"]
    assert (summary.recorded, summary.not_charged, summary.already_recorded) == (3, 2, 0)
    assert (summary.unreadable, summary.unpriced) == (0, 0)

    rows = store.get_usage_logs("nightly", limit=100)
    assert len(rows) == 3
    by_model = {row["model"]: row for row in rows}
    mini = by_model["gpt-4o-mini-2024-07-18"]
    assert mini["response_id"] == "chatcmpl-batch0001"
    assert (mini["input_tokens"], mini["output_tokens"], mini["cache_read_input_tokens"]) == (
        12_000,
        800,
        4096,
    )
    expected = {
        "gpt-4o-mini-2024-07-18": genai_nanos(
            "gpt-4o-mini-2024-07-18", "openai", 12_000, 800, 4096
        ),
        "gpt-4o-2024-08-06": genai_nanos("gpt-4o-2024-08-06", "openai", 5_000, 1_200),
        "text-embedding-3-small": genai_nanos("text-embedding-3-small", "openai", 4_000, 0),
    }
    assert {model: row["cost_nanos"] for model, row in by_model.items()} == expected
    assert by_model["text-embedding-3-small"]["operation"] == "embeddings"
    assert by_model["gpt-4o-2024-08-06"]["operation"] == "chat"
    assert summary.cost_nanos == sum(expected.values())
    assert summary.cost == pytest.approx(sum(expected.values()) / 1e9)
    # genai-prices halves these two for batch processing: so does the record.
    for model, inp, out in (("gpt-4o-2024-08-06", 5_000, 1_200),):
        standard = genai_nanos(model, "openai", inp, out, context=None)
        assert by_model[model]["cost_nanos"] * 2 == standard
    spans = telemetry.requests()
    # One span per recorded result, with its cost (embeddings carry no response id).
    assert sorted(str((s.attributes or {}).get("gen_ai.response.id")) for s in spans) == [
        "None",
        "chatcmpl-batch0001",
        "chatcmpl-batch0002",
    ]
    costs = [(s.attributes or {}).get("gen_ai.usage.cost.amount") for s in spans]
    assert sum(usd_to_nanos(cost) for cost in costs if isinstance(cost, float)) == (
        summary.cost_nanos
    )


def test_anthropic_results_iterator(
    store: SQLiteStore, served: BatchFiles, claude: anthropic.Anthropic
) -> None:
    results = claude.messages.batches.results("msgbatch_1")
    summary = llm_toll.record_batch(results, project="claude-batch")
    assert served.paths == [
        "/v1/messages/batches/msgbatch_1",
        "/v1/messages/batches/msgbatch_1/results",
    ]
    assert (summary.recorded, summary.not_charged, summary.already_recorded) == (2, 2, 0)
    rows = rows_by_response(store, "claude-batch")
    sonnet, haiku = rows["msg_batch0001"], rows["msg_batch0002"]
    assert sonnet["cost_nanos"] == genai_nanos("claude-sonnet-4-5", "anthropic", 9_000, 700)
    assert sonnet["cost_nanos"] * 2 == genai_nanos(
        "claude-sonnet-4-5", "anthropic", 9_000, 700, context=None
    )
    # Anthropic reports cache reads apart; they are counted in the input and priced once.
    assert (haiku["input_tokens"], haiku["cache_read_input_tokens"]) == (5_000, 2_000)
    assert haiku["cost_nanos"] == genai_nanos(
        "claude-3-5-haiku-20241022", "anthropic", 5_000, 400, read=2_000
    )
    assert summary.cost_nanos == sonnet["cost_nanos"] + haiku["cost_nanos"]


def test_recording_again_counts_nothing_twice(
    store: SQLiteStore, served: BatchFiles, oai: openai.OpenAI, claude: anthropic.Anthropic,
    tmp_path: Path,
) -> None:  # fmt: skip
    first = llm_toll.record_batch(oai.files.content("file-out-1"), project="rerun")
    spent = store.get_total_cost("rerun")
    assert first.recorded == 3 and spent > 0

    # The script runs again: the same file, read again, or saved and read from disk.
    again = llm_toll.record_batch(oai.files.content("file-out-1"), project="rerun")
    path = tmp_path / "output.jsonl"
    path.write_bytes(served.files["file-out-1"])
    from_disk = llm_toll.record_batch(path, project="rerun")
    for summary in (again, from_disk):
        assert (summary.recorded, summary.already_recorded, summary.not_charged) == (0, 3, 2)
        assert summary.cost_nanos == 0
    assert store.get_total_cost("rerun") == spent
    assert len(store.get_usage_logs("rerun", limit=100)) == 3

    llm_toll.record_batch(claude.messages.batches.results("msgbatch_1"), project="rerun")
    assert (
        llm_toll.record_batch(
            claude.messages.batches.results("msgbatch_1"), project="rerun"
        ).already_recorded
        == 2
    )
    assert len(store.get_usage_logs("rerun", limit=100)) == 5


def test_a_batch_may_cross_the_budget(
    store: SQLiteStore, served: BatchFiles, oai: openai.OpenAI, telemetry: Telemetry
) -> None:
    summary = llm_toll.record_batch(
        oai.files.content("file-out-1"), project="small", max_budget=0.001
    )
    assert summary.recorded == 3 and summary.cost > 0.001  # the money is spent: recorded
    events = [e for s in telemetry.requests() for e in s.events]
    assert [e.name for e in events].count("llm_toll.budget.exceeded") == 1

    @llm_toll.track_costs(project="small", max_budget=0.001)
    def later() -> dict[str, int]:
        return {"input_tokens": 1, "output_tokens": 1}

    with pytest.raises(llm_toll.BudgetExceededError):
        later()  # the next call of the project is refused


def test_bad_input_and_options(store: SQLiteStore) -> None:
    with pytest.raises(TypeError, match="record_batch"):
        llm_toll.record_batch(42)
    with pytest.raises(ValueError, match="max_budget"):
        llm_toll.record_batch(b"", max_budget=-1)
    with pytest.raises(ValueError, match="key_budget needs budget_key"):
        llm_toll.record_batch(b"", key_budget=1.0)
    no_usage = json.dumps(
        {"id": "x", "response": {"status_code": 200, "body": {"object": "chat.completion"}}}
    ).encode()
    with pytest.warns(llm_toll.exceptions.UsageWarning, match="2 result"):
        summary = llm_toll.record_batch(no_usage + b"\nnot json\n")
    assert (summary.recorded, summary.unreadable) == (0, 2)
