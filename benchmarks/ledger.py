"""A large ledger for the read benchmarks, built once and cached by row count.

The rows look like a real fleet's: 12 projects, 6 models, 200 budget keys (and calls
without one), 90 days of calls ending today, a few unpriced and estimated calls. They are
written straight into the ledger table of a file created by this project's store, in
batches, so building 1,000,000 rows takes seconds rather than the hour of a million
recorded calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from llm_toll._budget.records import BudgetSpec, CallRecord
from llm_toll.store import SQLiteStore
from llm_toll.store._ledger import COLUMNS, INSERT
from llm_toll.store._sqlite_schema import LATEST_VERSION
from llm_toll.usage._base import Usage

CACHE = Path(os.environ.get("LLM_TOLL_CACHE", Path.home() / ".cache" / "llm-toll"))
LAYOUT_VERSION = 1  # change it when the rows change: the cache is keyed by it
DAYS = 90
PROJECTS = [f"project-{n:02d}" for n in range(12)]
MODELS = [
    ("gpt-4o", "openai", 2_500),
    ("gpt-4o-mini", "openai", 150),
    ("claude-sonnet-4", "anthropic", 3_000),
    ("claude-haiku-3.5", "anthropic", 800),
    ("gemini-2.5-flash", "gcp.gemini", 300),
    ("text-embedding-3-small", "openai", 20),
]
KEYS = [None, *(f"tenant-{n:03d}" for n in range(200))]
BATCH = 20_000


def cached_ledger(rows: int) -> Path:
    """The path of a ledger of ``rows`` calls, built the first time each day.

    Keyed by the rows' layout, the schema version, the ledger's columns (a schema step not
    released yet may still gain some) and the day it was built: its calls end on that day,
    so the dashboard's default range (the last days) has calls in it.
    """
    day = datetime.now(timezone.utc).date().isoformat()
    columns = hashlib.sha1(",".join(COLUMNS).encode()).hexdigest()[:8]
    name = f"bench-ledger-v{LAYOUT_VERSION}-schema{LATEST_VERSION}-{columns}-{rows}"
    path = CACHE / f"{name}-{day}.db"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for stale in CACHE.glob(f"{name}-*.db"):  # an earlier day's (and its copies)
            stale.unlink()
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build(partial, rows)
        partial.rename(path)
    return path


def build(path: Path, rows: int, *, seed: int = 12) -> None:
    """``rows`` calls over the last ``DAYS`` days, and a daily budget per project."""
    now = datetime.now(timezone.utc)
    store = SQLiteStore(db_path=str(path))  # this project's schema, created by a write
    try:
        for project in PROJECTS:  # a budget total per project, for the budgets table
            call = CallRecord(project, "gpt-4o", Usage(1, 1), 1, now)
            store.record_call(call, BudgetSpec(50_000_000_000, "daily"))
    finally:
        store.close()
    chance = random.Random(seed)
    start = now - timedelta(days=DAYS)
    step = (now - start) / rows
    names = list(COLUMNS)
    # Closed (its write-ahead log folded into the file) before the file is renamed.
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for first in range(0, rows - len(PROJECTS), BATCH):
            batch = []
            for n in range(first, min(first + BATCH, rows - len(PROJECTS))):
                model, provider, rate = chance.choice(MODELS)
                tokens_in, tokens_out = chance.randint(50, 4_000), chance.randint(0, 800)
                cached = chance.randrange(tokens_in) if chance.random() < 0.3 else 0
                priced = n % 997 != 0
                values = dict.fromkeys(names)
                values.update(
                    project=chance.choice(PROJECTS),
                    model=model,
                    provider=provider,
                    operation="embeddings" if model.startswith("text-") else "chat",
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cache_read_input_tokens=cached,
                    cache_creation_input_tokens=0,
                    reasoning_output_tokens=tokens_out // 4 if n % 5 == 0 else 0,
                    cost_nanos=(tokens_in + 4 * tokens_out) * rate if priced else 0,
                    price_known=priced,
                    estimated=n % 1_009 == 0,
                    budget_key=chance.choice(KEYS),
                    response_id=f"resp-{n}",
                    duration_s=chance.random() * 5,
                    created_at=(start + step * n).isoformat(),
                    price_source="genai-prices" if priced else None,
                    price_version="0.0.40" if priced else None,
                    cost_source="local",
                )
                batch.append(tuple(values[name] for name in names))
            conn.executemany(INSERT, batch)
