"""POSTing an alert to a webhook, with retries: timeouts, connection errors, 5xx and 429
(waiting its ``Retry-After``) are tried again with exponential backoff; other answers are
final."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, Final

from llm_toll._warnings import warn_once
from llm_toll.alerts._options import shown_url
from llm_toll.exceptions import TelemetryWarning

ATTEMPTS: Final = 5
TIMEOUT_S: Final = 5.0
"""Each attempt's connect and read timeout."""
FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 30.0
"""The longest pause between attempts, a ``Retry-After`` included."""

Pause = Callable[[float], object]
"""Waits between attempts; the dispatcher's, which an exit cuts short."""


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def deliver(url: str, body: dict[str, Any], pause: Pause) -> bool:
    """POST ``body`` as JSON to ``url`` until it is taken or the attempts run out; whether
    it was taken. Never raises: a failure is warned about once per host."""
    data = json.dumps(body).encode()
    reason = ""
    for attempt in range(ATTEMPTS):
        try:
            _post(url, data)
            return True
        except _Retry as retry:
            reason = str(retry)
            if attempt + 1 == ATTEMPTS:
                break
            backoff = FIRST_BACKOFF_S * 2**attempt * (0.5 + random.random())  # jitter
            wait = retry.after if retry.after is not None else backoff
            if pause(min(wait, MAX_BACKOFF_S)) is False:  # the process is ending
                break
        except _Final as final:
            reason = str(final)
            break
    warn_once(f"alert-webhook:{shown_url(url)}", f"llm_toll could not send an alert to the "
              f"webhook {shown_url(url)} ({reason}); it is dropped.", TelemetryWarning)  # fmt: skip
    return False


class _Final(Exception):
    """An answer that trying again cannot change (a 4xx other than 429)."""


def _post(url: str, data: bytes) -> None:
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            answer.read()
    except urllib.error.HTTPError as error:
        with error:
            status = error.code
            if status == 429 or status >= 500:
                after = _retry_after(error.headers.get("Retry-After"))
                raise _Retry(f"HTTP {status}", after) from None
            raise _Final(f"HTTP {status}") from None
    except (urllib.error.URLError, OSError) as error:  # refused, timed out, reset
        raise _Retry(type(getattr(error, "reason", error)).__name__) from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import datetime, timezone

    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
