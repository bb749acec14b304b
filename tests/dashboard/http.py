"""Plain HTTP requests to a dashboard, answers kept whatever their status."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def get(url: str, path: str = "/", headers: dict[str, str] | None = None) -> Answer:
    """GET ``path`` from the server at ``url`` (redirects are not followed)."""
    where = urlsplit(url)
    assert where.hostname is not None and where.port is not None
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()
