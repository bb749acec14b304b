"""A loopback HTTP server that answers like the OpenAI, Anthropic and Gemini APIs.

The real SDK clients are pointed at it, so tests and the demo exercise the SDKs' own
parsing of the providers' documented JSON and server-sent-event (SSE) bodies:

>>> with ReplayServer() as srv:  # doctest: +SKIP
...     client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="test", max_retries=0)
...     client.chat.completions.create(model="gpt-4o", messages=[...])
...     srv.last.tokens  # the counts the server reported, as a Usage

Routes (POST):

- OpenAI: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
  ``/v1/responses``; ``"stream": true`` answers SSE (chat and completions end with
  ``data: [DONE]``, and carry usage only with ``stream_options.include_usage``).
- Anthropic: ``/v1/messages`` (SSE events ``message_start`` ... ``message_stop``).
- Gemini: ``/{version}/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``.

Token counts are deterministic: the prompt costs one token per word or punctuation mark of
the request's prompt text (a different rule from llm_toll's own 4-characters estimate, so
a reported count and an estimate can be told apart), plus any scripted cached prefix; the
output costs the same per word of the reply, plus any scripted reasoning tokens.

Scripting (tests): :meth:`ReplayServer.script` queues an override for the next request
(usage omitted or malformed, another model, an HTTP error, a stream cut mid-way...),
:meth:`ReplayServer.fail` makes every request for one model answer an HTTP error (a
deployment that is down, for retries and fallbacks), and
:attr:`ReplayServer.requests` records each exchange, including exactly what usage was sent.

Only the standard library is used here: the SDKs are never imported, and neither is
llm_toll's own reading of usage, which the server is there to test.
"""

from llm_toll.demo.replay._answer import DEFAULT, Exchange, Script, count_tokens
from llm_toll.demo.replay.server import ReplayServer

__all__ = ["DEFAULT", "Exchange", "ReplayServer", "Script", "count_tokens"]
