"""The provider's response id kept in the ledger, also where LiteLLM hands out its own."""

from __future__ import annotations

import pytest

from llm_toll._budget.response_ids import provider_response_id


@pytest.mark.parametrize(
    ("provider", "deployment"), [("openai", None), ("azure", "deployment-1"), (None, None)]
)
def test_an_id_litellm_encoded_is_the_providers(
    provider: str | None, deployment: str | None
) -> None:
    utils = pytest.importorskip("litellm.responses.utils").ResponsesAPIRequestUtils
    encoded = utils._build_responses_api_response_id(provider, deployment, "resp_abc123")
    assert encoded != "resp_abc123"
    assert provider_response_id(encoded) == "resp_abc123"


@pytest.mark.parametrize(
    "response_id",
    [
        "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",  # OpenAI's own
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "msg_01XFDUDYJgAACzvnptvVoYEL",
        "resp_",
        "",
        None,
    ],
)
def test_other_ids_are_kept_as_they_are(response_id: str | None) -> None:
    assert provider_response_id(response_id) == response_id
