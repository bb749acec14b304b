"""Each provider response recorded once when two of llm_toll's paths see it.

LiteLLM and LangChain call the openai (or anthropic) SDK, which llm_toll's hooks record;
their callbacks then report the same response again; and another instrumentation's span of
that request ends after it (``price_foreign_spans=True``). Whichever path records a
response id first owns it, and the other paths' records of that id are dropped. A path may
record an id it owns again (a provider or a test server that repeats ids): only the paths
are told apart, never two calls of the same path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Literal

Path = Literal["hooks", "callback", "foreign"]
"""``hooks``: the SDK hooks and the decorators; ``callback``: a framework's callback;
``foreign``: a span another GenAI instrumentation made (``_budget.foreign``)."""

# Ids are claimed as responses arrive and checked moments later by the other path: a few
# thousand cover any number of calls in flight.
_MAX_CLAIMS = 4096


class ResponseClaims:
    """Which path recorded each recent response id. Thread-safe."""

    def __init__(self, size: int = _MAX_CLAIMS) -> None:
        self._lock = threading.Lock()
        self._owners: OrderedDict[str, Path] = OrderedDict()
        self._size = size

    def claim(self, response_id: str | None, path: Path) -> bool:
        """Whether ``path`` may record the response ``response_id``: no other path did.

        A response without an id cannot be matched, so it is always recorded.
        """
        if not response_id:
            return True
        with self._lock:
            owner = self._owners.get(response_id)
            if owner is None:
                self._owners[response_id] = path
                if len(self._owners) > self._size:
                    self._owners.popitem(last=False)
                return True
            return owner == path

    def clear(self) -> None:
        """Forget every claim (between tests that replay the same answers)."""
        with self._lock:
            self._owners.clear()


claims = ResponseClaims()
"""The process's claims: both paths of one process check the same."""
