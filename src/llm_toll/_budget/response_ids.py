"""A response's id as its provider gave it.

LiteLLM's ``responses()`` hands its callers (and its stream events) an id of its own:
``resp_`` and the base64 of ``litellm:custom_llm_provider:...;model_id:...;response_id:<the
provider's id>``. The ledger keeps the provider's id, so that the paths that see one response
(the hooks, LiteLLM's callback) name it alike and record it once, and a row can be matched
with the provider's bill."""

from __future__ import annotations

import base64
import binascii

_PREFIX = "resp_"
# 27 bytes encode to 36 characters whatever follows them: every id LiteLLM encodes starts so.
_ENCODED = _PREFIX + base64.b64encode(b"litellm:custom_llm_provider").decode("ascii")
_INNER = ";response_id:"


def provider_response_id(response_id: str | None) -> str | None:
    """The provider's id inside an id LiteLLM encoded; any other id as it is."""
    if response_id is None or not response_id.startswith(_ENCODED):
        return response_id  # ``chatcmpl-``, OpenAI's own ``resp_``, Anthropic's ``msg_``...
    try:
        text = base64.b64decode(response_id[len(_PREFIX) :], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return response_id
    _, found, inner = text.rpartition(_INNER)
    return inner if found and inner else response_id
