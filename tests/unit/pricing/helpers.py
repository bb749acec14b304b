"""What the pricing tests share: genai-prices' own price of a call in nano-USD, a mixed
usage, and a loopback server that serves price data to ``update_pricing``."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import genai_prices

from llm_toll._budget.money import usd_to_nanos
from llm_toll.usage._base import Usage

GENAI_SOURCE = "genai-prices"
GENAI_VERSION = genai_prices.__version__
NOW = datetime.now(timezone.utc)


def genai_usage(usage: Usage) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_output_tokens,
    )


def genai_nanos(
    model: str, usage: Usage, *, provider_id: str | None = None, at: datetime = NOW
) -> int:
    """What genai-prices' public calc_price says, in nano-USD."""
    calc = genai_prices.calc_price(
        genai_usage(usage), model, provider_id=provider_id, genai_request_timestamp=at
    )
    return usd_to_nanos(calc.total_price)


MIXED = Usage(
    input_tokens=48_213,
    output_tokens=3_917,
    cache_read_input_tokens=20_480,
    cache_creation_input_tokens=4_099,
    reasoning_output_tokens=1_201,
)


SERVED_PROVIDERS = [
    {
        "id": "tollprov",
        "name": "Toll test provider",
        "api_pattern": "https://toll\\.invalid",
        "model_match": {"starts_with": "toll-"},
        "models": [
            {
                "id": "toll-model",
                "match": {"equals": "toll-model"},
                "prices": {"input_mtok": "1.5", "output_mtok": "4", "cache_read_mtok": "0.15"},
            },
            {
                # Tiers one token apart: regions too narrow to derive a fast price from.
                "id": "toll-cliff",
                "match": {"equals": "toll-cliff"},
                "prices": {
                    "input_mtok": {
                        "base": "1",
                        "tiers": [{"start": 0, "price": "2"}, {"start": 1, "price": "3"}],
                    },
                    "output_mtok": "4",
                },
            },
        ],
    }
]


class PriceServer:
    """A loopback HTTP server answering every GET with one body."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/data.json"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
