"""``python -m llm_toll.demo`` (``make demo``): a simulated day of LLM traffic, no API key.

The real openai, anthropic and google-genai clients talk to a replay server on 127.0.0.1
that answers with the providers' documented JSON and SSE bodies. Four projects with
budgets run sync, async, streaming and concurrent calls: one budget is exhausted and
refuses further calls, one rate limit refuses a call, one model has no known price. A
summary is read back from the store at the end. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set,
spans and metrics are exported over OTLP as well.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_toll import (
    BudgetExceededError,
    CostReporter,
    LocalRateLimitError,
    SQLiteStore,
    set_reporter,
    set_store,
    telemetry,
    track_costs,
)
from llm_toll.demo.replay import ReplayServer

QUESTIONS = [
    "How do I reset my password?",
    "Can I change the email address on my account?",
    "Why was my card declined when I upgraded my plan?",
    "Where can I download last month's invoice?",
    "How do I invite a teammate to my workspace?",
    "What happens to my data if I cancel?",
]
# A long report: Anthropic bills it as output tokens, so the research budget runs out.
REPORT = " ".join(f"Finding {i}: the evidence points one way, with caveats." for i in range(160))


def clients(server: ReplayServer) -> dict[str, Any]:
    try:
        import anthropic
        import openai
        from google import genai
        from google.genai import types
    except ImportError as missing:  # pragma: no cover - depends on the install
        raise SystemExit(
            f"The demo uses the provider SDKs ({missing.name} is missing): "
            "pip install 'llm-toll[demo]'"
        ) from missing
    gemini_options = types.HttpOptions(base_url=server.base_url, api_version="v1beta")
    return {
        "openai": openai.OpenAI(base_url=server.base_url + "/v1", api_key="demo", max_retries=0),
        "anthropic": anthropic.AsyncAnthropic(
            base_url=server.base_url, api_key="demo", max_retries=0
        ),
        "gemini": genai.Client(api_key="demo", vertexai=False, http_options=gemini_options),
    }


def run_support_bot(openai_client: Any) -> None:
    """Sync chat completions, with a daily budget nowhere near spent, and a rate limit."""

    @track_costs(project="support-bot", max_budget=1.00, reset="daily", rate_limit=5)
    def answer(question: str) -> Any:
        return openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )

    for question in QUESTIONS:
        try:
            answer(question)
        except LocalRateLimitError as limited:
            print(f"  rate limited: {limited}")


def run_experiments(openai_client: Any) -> None:
    """A self-hosted fine-tune behind an OpenAI-compatible API: a model with no known price."""

    @track_costs(project="experiments")
    def ask(question: str) -> Any:
        return openai_client.chat.completions.create(
            model="acme-support-ft-7b", messages=[{"role": "user", "content": question}]
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ask(QUESTIONS[0])
    for warning in caught:
        print(f"  warning: {warning.message}")


async def run_research_agent(server: ReplayServer, anthropic_client: Any) -> None:
    """Async streaming Anthropic calls until a small budget is exhausted."""

    @track_costs(project="research-agent", max_budget=0.10)
    async def research(topic: str) -> Any:
        server.script(text=REPORT)  # the replay server will answer with a long report
        stream = await anthropic_client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=4096,
            messages=[{"role": "user", "content": f"Write a report on {topic}."}],
            stream=True,
        )
        async for event in stream:
            yield event

    topics = ["battery recycling", "grid storage", "heat pumps", "tidal power", "hydrogen"]
    for topic in topics:
        try:
            async for _ in research(topic):
                pass
        except BudgetExceededError as refused:
            print(f"  refused: research on {topic!r}: {refused}")


async def run_summarizer(gemini_client: Any) -> None:
    """Concurrent Gemini calls with asyncio.gather, and one streamed summary."""

    @track_costs(project="summarizer", max_budget=5.00, reset="monthly")
    async def summarize(text: str) -> Any:
        return await gemini_client.aio.models.generate_content(
            model="gemini-2.5-flash", contents=f"Summarize in one line: {text}"
        )

    @track_costs(project="summarizer", max_budget=5.00, reset="monthly")
    async def summarize_stream(text: str) -> Any:
        return await gemini_client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=f"Summarize at length: {text}"
        )

    await asyncio.gather(*(summarize(question) for question in QUESTIONS))
    async for _ in await summarize_stream(" ".join(QUESTIONS)):
        pass


def print_summary(db_path: Path) -> None:
    """The ledger and budgets read back as ``llm-toll summary`` and ``llm-toll budgets``
    show them: exact money, unpriced calls marked, periods named as everywhere else."""
    from llm_toll.cli import main as llm_toll_cli

    print("\nSummary, read back from the store:")
    for command in ("summary", "budgets"):
        print()
        llm_toll_cli(["--db", str(db_path), command])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_toll.demo", description=__doc__)
    parser.add_argument("--db", help="SQLite file to record into (default: a new temp file)")
    args = parser.parse_args(argv)
    db_path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "demo.db"
    store = SQLiteStore(db_path)
    set_store(store)
    set_reporter(CostReporter(enabled=True, file=sys.stdout))
    exporting = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    print(f"llm_toll demo: recording into {db_path}")
    print(
        f"  OTLP export to {exporting}"
        if exporting
        else "  (set OTEL_EXPORTER_OTLP_ENDPOINT to export)"
    )

    app_tracing = app_tracer_provider() if exporting else None
    app = trace.get_tracer("llm_toll.demo")

    with ReplayServer() as server:
        sdk = clients(server)
        print("\nsupport-bot: OpenAI chat, $1.00 a day, 5 requests a minute")
        with app.start_as_current_span("demo support-bot"):
            run_support_bot(sdk["openai"])
        print("\nresearch-agent: Anthropic streaming, $0.10 in all")
        with app.start_as_current_span("demo research-agent"):
            asyncio.run(run_research_agent(server, sdk["anthropic"]))
        print("\nsummarizer: Gemini, concurrent and streamed, $5.00 a month")
        with app.start_as_current_span("demo summarizer"):
            asyncio.run(run_summarizer(sdk["gemini"]))
        print("\nexperiments: a model with no known price")
        with app.start_as_current_span("demo experiments"):
            run_experiments(sdk["openai"])

    store.wait_for_writes()  # the async calls' records, before another connection reads
    print_summary(db_path)
    if app_tracing is not None:
        app_tracing.force_flush()
    telemetry.flush()
    store.close()
    return 0


def app_tracer_provider() -> TracerProvider:
    """Trace like an app that runs OpenTelemetry itself: a global SDK TracerProvider
    exporting over OTLP (configured by the OTEL_* variables). llm_toll attaches to it, so
    its spans nest under the demo's own and the SDKs' spans nest under llm_toll's."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


if __name__ == "__main__":
    sys.exit(main())
