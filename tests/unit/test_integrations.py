"""The framework callbacks, driven the way their frameworks drive them."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.outputs import Generation, LLMResult
from openai.types.chat import ChatCompletion

from llm_toll import BudgetExceededError, LangChainCallback, LiteLLMCallback, default_registry
from llm_toll.exceptions import AccountingWarning
from llm_toll.store import SQLiteStore


def llm_result(prompt_tokens: int, completion_tokens: int) -> LLMResult:
    return LLMResult(
        generations=[[Generation(text="hi")]],
        llm_output={
            "token_usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            "model_name": "integration-model",
        },
    )


def test_langchain_callback_through_the_callback_manager(store: SQLiteStore) -> None:
    default_registry.register_model("integration-model", 0.001, 0.001)
    handler = LangChainCallback(project="lc", max_budget=1.5)
    manager = CallbackManager(handlers=[handler])

    for _ in range(2):  # $1 a call: the second crosses $1.50 and is still recorded
        [run] = manager.on_llm_start({"name": "fake"}, ["hello"], run_id=uuid4())
        run.on_llm_end(llm_result(600, 400))
    assert store.get_total_cost("lc") == pytest.approx(2.0)
    with pytest.raises(BudgetExceededError):
        manager.on_chat_model_start({"name": "fake"}, [[]], run_id=uuid4())


def test_litellm_callback_records_an_openai_shaped_response(store: SQLiteStore) -> None:
    response = ChatCompletion.model_validate(
        {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
         "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 100,
                                  "total_tokens": 1100}}
    )  # fmt: skip
    callback = LiteLLMCallback(project="litellm")
    callback.log_success_event({}, response, None, None)
    [row] = store.get_usage_logs("litellm")
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == ("gpt-4o", 1000, 100)
    assert row["cost_nanos"] == 3_500_000  # $2.50/M in + $10/M out


def test_callbacks_with_their_own_store(store: SQLiteStore, tmp_path: Any) -> None:
    own = SQLiteStore(tmp_path / "own.db")
    handler = LangChainCallback(project="own-store", store=own)
    manager = CallbackManager(handlers=[handler])
    [run] = manager.on_llm_start({}, ["x"], run_id=uuid4())
    run.on_llm_end(llm_result(10, 5))
    assert len(own.get_usage_logs("own-store")) == 1
    assert store.get_usage_logs("own-store") == []
    own.close()


def test_a_store_that_cannot_be_read_warns_as_the_decorator_does(
    store: SQLiteStore, tmp_path: Any
) -> None:
    """The callbacks run the decorator's own pre-call check: a budget the store cannot read
    lets the call go on, with the decorator's AccountingWarning."""
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("a file where the database's directory should be")
    broken = SQLiteStore(not_a_directory / "ledger.db")
    handler = LangChainCallback(project="lc-broken", max_budget=1.0, store=broken)
    manager = CallbackManager(handlers=[handler])
    with pytest.warns(AccountingWarning, match="could not read the budget of 'lc-broken'"):
        [run] = manager.on_llm_start({"name": "fake"}, ["hello"], run_id=uuid4())
    assert run is not None
