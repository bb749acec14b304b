"""Shared fixtures: the loopback replay server and real SDK clients pointed at it.

Nothing here reaches the network: every client talks to 127.0.0.1, and retries are off
(``max_retries=0``, google-genai ``attempts=1``) so scripted HTTP errors fail at once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llm_toll.demo.replay import ReplayServer

if TYPE_CHECKING:
    import anthropic
    import openai
    from google import genai

API_KEY = "test"

# LiteLLM fetches its price map from the internet on import unless told to use its bundled
# copy; the tests (and the processes they start) never reach out.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session", autouse=True)
def spill_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Spill journals of the session (and of the processes it starts) in a directory of
    its own, never the user's."""
    from llm_toll._budget.journal import SPILL_DIR_ENV

    directory = tmp_path_factory.mktemp("spill")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SPILL_DIR_ENV, str(directory))
        yield directory


@pytest.fixture(scope="session", autouse=True)
def default_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default SQLite ledger of the session (and of the processes it starts): a test
    that uses the process-wide store without choosing one writes here, never to the user's
    ``~/.llm_toll.db``."""
    from llm_toll.store.sqlite import DB_PATH_ENV

    path = tmp_path_factory.mktemp("ledger") / "default.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DB_PATH_ENV, str(path))
        yield path


@pytest.fixture(autouse=True)
def fresh_response_claims() -> None:
    """Tests replay the same answers (the same response ids): which of llm_toll's paths
    recorded an id in an earlier test must not drop a record in this one."""
    from llm_toll._budget.once import claims

    claims.clear()


@pytest.fixture(scope="session")
def replay_server() -> Iterator[ReplayServer]:
    """One server for the whole session; tests use :func:`replay`, which resets it."""
    with ReplayServer() as server:
        yield server


@pytest.fixture
def replay(replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server with no queued scripts and no recorded requests."""
    replay_server.reset()
    yield replay_server
    replay_server.reset()


@pytest.fixture
def openai_client(replay: ReplayServer) -> Iterator[openai.OpenAI]:
    import openai

    client = openai.OpenAI(base_url=replay.base_url + "/v1", api_key=API_KEY, max_retries=0)
    with client:
        yield client


@pytest.fixture
async def async_openai_client(replay: ReplayServer) -> AsyncIterator[openai.AsyncOpenAI]:
    import openai

    client = openai.AsyncOpenAI(base_url=replay.base_url + "/v1", api_key=API_KEY, max_retries=0)
    async with client:
        yield client


@pytest.fixture
def anthropic_client(replay: ReplayServer) -> Iterator[anthropic.Anthropic]:
    import anthropic

    client = anthropic.Anthropic(base_url=replay.base_url, api_key=API_KEY, max_retries=0)
    with client:
        yield client


@pytest.fixture
async def async_anthropic_client(replay: ReplayServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=replay.base_url, api_key=API_KEY, max_retries=0)
    async with client:
        yield client


@pytest.fixture
async def gemini_client(replay: ReplayServer) -> AsyncIterator[genai.Client]:
    """A google-genai Client; its async API is ``gemini_client.aio``.

    An async fixture, so that the client's async transport is closed on the loop it ran on.
    google-genai quirk: it builds ``{base_url}/{api_version}/models/{model}:generateContent``
    and, for the Gemini API, its default ``api_version`` is ``v1`` in google-genai 3.x
    (``v1beta`` before); pinning ``v1beta`` keeps the documented URL. The replay server
    answers either.
    """
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=API_KEY,
        vertexai=False,
        http_options=types.HttpOptions(
            base_url=replay.base_url,
            api_version="v1beta",
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    yield client
    await client.aio.aclose()
    client.close()


pytest_plugins = ["tests.support.otel", "tests.support.otlp"]

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs the slow parts, so ``make test-fast`` (``-m "not e2e and not postgres
    and not root and not browser"``) runs everything else with neither root nor Go."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        backend = None if callspec is None else callspec.params.get("store_factory")
        if backend == "postgres" or "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
