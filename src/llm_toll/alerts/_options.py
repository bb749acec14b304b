"""The alert options of a decorator or a run, checked where they are given."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from llm_toll._warnings import warn_once
from llm_toll.alerts._alert import WEBHOOK_ENV, AlertCallback
from llm_toll.exceptions import TelemetryWarning


@dataclass(frozen=True, slots=True)
class AlertOptions:
    """Where a plan's alerts go: its callbacks, and its webhook (None: the environment's)."""

    on_threshold: AlertCallback | None = None
    on_exceeded: AlertCallback | None = None
    webhook: str | None = None


def alert_options(
    on_threshold: object, on_exceeded: object, alert_webhook: object
) -> AlertOptions | None:
    """The options checked (a ValueError names the wrong one); None when none is given."""
    for name, value in (("on_threshold", on_threshold), ("on_exceeded", on_exceeded)):
        if value is not None and not callable(value):
            raise ValueError(f"{name} must be a callable taking an llm_toll Alert, got {value!r}")
    if alert_webhook is not None:
        problem = webhook_problem(alert_webhook)
        if problem is not None:
            raise ValueError(f"alert_webhook {problem}")
    if on_threshold is None and on_exceeded is None and alert_webhook is None:
        return None
    return AlertOptions(on_threshold, on_exceeded, alert_webhook)  # type: ignore[arg-type]


def webhook_problem(url: object) -> str | None:
    """What is wrong with a webhook URL, or None: an http(s) URL with a host."""
    if not isinstance(url, str) or not url:
        return f"must be an http:// or https:// URL, got {url!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return f"is not a URL: {shown_url(url)}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, got {shown_url(url)}"
    return None


def webhook_of(options: AlertOptions | None) -> str | None:
    """The webhook an alert goes to: the plan's, else ``LLM_TOLL_ALERT_WEBHOOK`` (read at
    each alert, so it can be set after the functions are decorated); an unusable value of
    the variable is warned about once and ignored."""
    if options is not None and options.webhook is not None:
        return options.webhook
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        return None
    problem = webhook_problem(url)
    if problem is None:
        return url
    warn_once(f"alert-webhook-env:{url}", f"llm_toll: {WEBHOOK_ENV} {problem}; no webhook "
              "alert is sent.", TelemetryWarning)  # fmt: skip
    return None


def shown_url(url: str) -> str:
    """A webhook URL as messages show it: scheme and host only (a Slack webhook's path is
    its secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<not a URL>"
    return f"{parts.scheme}://{host}/..." if parts.scheme else "<not a URL>"
