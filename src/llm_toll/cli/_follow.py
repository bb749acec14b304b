"""``llm-toll logs --follow``: the latest calls, then each new call as it is recorded.

The store is polled with ``store.calls(after_id=...)`` every ``--interval`` seconds (default
1): one indexed read of the rows after the last one shown, cheap on both backends, and it
works the same for calls recorded by any process sharing the store. Lines are printed
oldest first and flushed at once, so a pipe (``| grep``) sees each call when it is shown.
Ctrl-C ends it with exit code 0.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from llm_toll.cli._tables import count, nanos_usd
from llm_toll.cli._tables import time as utc_time

if TYPE_CHECKING:
    from llm_toll.cli._tools import Session

_BATCH = 1000
"""The most rows one poll reads (and the most the first screen shows)."""


def run(args: argparse.Namespace, session: Session) -> int:
    filters = {
        "project": args.project,
        "model": args.model,
        "since": args.since,
        "until": args.until,
    }
    try:
        with session(reads=True) as store:
            recent = store.calls(**filters, limit=args.limit or _BATCH)
            last_id = _show(reversed(recent), 0)
            while True:
                time.sleep(args.interval)  # the poll interval, between reads of the store
                new = store.calls(**filters, after_id=last_id, limit=_BATCH)
                if len(new) == _BATCH:  # the newest come first: older ones may be past them
                    print(
                        f"(more than {_BATCH:,} calls since the last line: only the newest "
                        f"{_BATCH:,} are shown; `llm-toll export` has them all)",
                        flush=True,
                    )
                last_id = _show(reversed(new), last_id)
    except KeyboardInterrupt:
        return 0


def _show(rows: Any, last_id: int) -> int:
    """Print ``rows`` (oldest first), one line each; return the last id shown."""
    for row in rows:
        flags = "".join(
            f"  [{flag}]"
            for flag, on in (("unpriced", not row["price_known"]), ("estimated", row["estimated"]))
            if on
        )
        key = f"  key={row['budget_key']}" if row["budget_key"] else ""
        print(
            f"{utc_time(row['created_at'])}  {row['project']}  {row['model']}"
            f"  in {count(row['input_tokens'])}  out {count(row['output_tokens'])}"
            f"  {nanos_usd(row['cost_nanos'])}{key}{flags}",
            flush=True,
        )
        last_id = max(last_id, int(row["id"]))
    return last_id
