"""The pieces of an alert a test through the decorator cannot reach: what a webhook URL may
be, how messages show it, and how a ``Retry-After`` header reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from llm_toll.alerts._options import shown_url, webhook_problem
from llm_toll.alerts._webhook import _retry_after


@pytest.mark.parametrize(
    "url", ["https://hooks.slack.com/services/T0/B0/x", "http://127.0.0.1:8080/hook"]
)
def test_http_urls_with_a_host_are_webhooks(url: str) -> None:
    assert webhook_problem(url) is None


@pytest.mark.parametrize(
    "url", ["", "hooks.slack.com/services", "ftp://host/x", "https:///no-host", "http://h:port/", 7]
)
def test_anything_else_is_named_as_wrong(url: object) -> None:
    assert webhook_problem(url) is not None


def test_messages_show_a_webhook_without_its_secret_path() -> None:
    shown = shown_url("https://user:pw@hooks.slack.com/services/T0/B0/s3cret")
    assert shown == "https://hooks.slack.com/..."


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after("-3") == 0.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    waited = _retry_after(later)
    assert waited is not None and 3500 < waited <= 3600
    past = format_datetime(datetime(2020, 1, 1, tzinfo=timezone.utc), usegmt=True)
    assert _retry_after(past) == 0.0
