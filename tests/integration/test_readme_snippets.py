"""Every Python block of the README, run as a program against the loopback replay server
(the SDKs find it through their documented environment variables), each in a fresh
interpreter with a fresh ledger."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from llm_toll.demo.replay import ReplayServer
from tests.integration.test_batches import OPENAI_LINES, jsonl

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


class Harness(NamedTuple):
    """What a block that only defines functions needs around it to run."""

    prelude: str
    epilogue: str


ASYNC_CLIENT = (
    "import asyncio, openai\nfrom llm_toll import track_costs\nclient = openai.AsyncOpenAI()\n"
)
SYNC = "from llm_toll import track_costs\n"
BATCH_FILE = jsonl(OPENAI_LINES)  # an OpenAI batch's output file: 3 results, 2 failed
# Keyed by a line each such block holds; blocks not listed run as they are.
HARNESSES = {
    "async def async_chat(text):": Harness(ASYNC_CLIENT, 'asyncio.run(async_chat("Hi"))\n'),
    "async def async_stream(text):": Harness(
        ASYNC_CLIENT,
        "async def main():\n"
        '    async for _ in async_stream("Hi"):\n'
        "        pass\n"
        '    async for _ in await get_stream("Hi"):\n'
        "        pass\n"
        "asyncio.run(main())\n",
    ),
    "def answer(question): ...": Harness(SYNC, 'answer("Hi")\n'),
    'record_batch("batch_output.jsonl"': Harness(
        f"import pathlib\npathlib.Path('batch_output.jsonl').write_bytes({BATCH_FILE!r})\n",
        "assert (summary.recorded, summary.not_charged) == (3, 2), summary\n"
        'again = llm_toll.record_batch("batch_output.jsonl", project="nightly")\n'
        "assert (again.recorded, again.already_recorded) == (0, 3), again\n",
    ),
    # LiteLLM's bundled price map, rather than one fetched at import.
    "litellm.callbacks = [": Harness(
        "import os\nos.environ['LITELLM_LOCAL_MODEL_COST_MAP'] = 'True'\n", ""
    ),
    "def answer(user, question): ...": Harness(
        SYNC + "from types import SimpleNamespace\n",
        'answer(SimpleNamespace(id="ann"), "Hi")\n',
    ),
}
# Blocks that make no provider request.
NO_REQUESTS = ("default_registry.register_model", "def answer(question): ...",
               "def answer(user, question): ...", "llm_toll.record_batch(",
               "store.spend(")  # fmt: skip


def harness_of(block: str) -> Harness:
    for marker, harness in HARNESSES.items():
        if marker in block:
            return harness
    return Harness("", "")


def test_every_block_is_found() -> None:
    assert len(BLOCKS) >= 8
    assert all(compile(harness_of(b).prelude + b + harness_of(b).epilogue, "b", "exec")
               for b in BLOCKS)  # fmt: skip


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{n}" for n in range(len(BLOCKS))])
def test_readme_block_runs(block: str, replay: ReplayServer, tmp_path: Path) -> None:
    harness = harness_of(block)
    program = tmp_path / "snippet.py"
    program.write_text(harness.prelude + block + harness.epilogue, encoding="utf-8")
    ledger = tmp_path / "ledger.db"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "LLM_TOLL_", "OPENAI_", "ANTHROPIC_"))
    }
    env.update(
        OPENAI_BASE_URL=replay.base_url + "/v1",
        OPENAI_API_KEY="test",
        ANTHROPIC_BASE_URL=replay.base_url,
        ANTHROPIC_API_KEY="test",
        LLM_TOLL_DB=str(ledger),
    )
    done = subprocess.run(
        [sys.executable, str(program)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if any(marker in block for marker in NO_REQUESTS):
        assert replay.requests == []
        return
    assert replay.requests, "the block made no request"
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT response_id FROM usage_logs").fetchall()
    answered = [exchange for exchange in replay.requests if exchange.status == 200]
    # Every request the server answered is one ledger row, exactly once.
    assert sorted(str(row[0]) for row in rows) == sorted(str(e.response_id) for e in answered)
