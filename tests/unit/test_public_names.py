"""The public surface, pinned: ``llm_toll.__all__``, the import paths of llm-toll 0.13 and
what each exports, and every span attribute and metric name in the README's tables."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import llm_toll
from llm_toll.telemetry import _metrics as metrics
from llm_toll.telemetry import _names as names

README = Path(__file__).resolve().parents[2] / "README.md"

PUBLIC = [
    "BaseStore",
    "BatchSummary",
    "BudgetExceededError",
    "CostReporter",
    "CostSpanProcessor",
    "LangChainCallback",
    "LiteLLMCallback",
    "LocalRateLimitError",
    "PricingMatrixOutdatedWarning",
    "PricingRegistry",
    "RateLimiter",
    "SQLiteStore",
    "UnpricedModelError",
    "UsageStore",
    "__version__",
    "create_store",
    "default_registry",
    "instrument",
    "record_batch",
    "run",
    "set_reporter",
    "set_store",
    "setup_telemetry",
    "track_costs",
    "uninstrument",
    "update_pricing",
]

# llm-toll 0.13's import paths and the names users import from each; ours may add more.
V013_PATHS = {
    "llm_toll": [
        "BaseStore",
        "BudgetExceededError",
        "CostReporter",
        "LangChainCallback",
        "LiteLLMCallback",
        "LocalRateLimitError",
        "PricingMatrixOutdatedWarning",
        "PricingRegistry",
        "RateLimiter",
        "SQLiteStore",
        "UsageStore",
        "__version__",
        "create_store",
        "default_registry",
        "set_reporter",
        "set_store",
        "track_costs",
        "update_pricing",
    ],
    "llm_toll.exceptions": [
        "BudgetExceededError",
        "LocalRateLimitError",
        "PricingMatrixOutdatedWarning",
    ],
    "llm_toll.decorator": ["set_reporter", "set_store", "track_costs"],
    "llm_toll.store": ["BaseStore", "SQLiteStore", "UsageStore", "create_store"],
    "llm_toll.pricing": ["PricingRegistry", "default_registry"],
    "llm_toll.rate_limiter": ["RateLimiter"],
    "llm_toll.reporter": ["CostReporter"],
    "llm_toll.integrations.litellm": ["LiteLLMCallback"],
    "llm_toll.integrations.langchain": ["LangChainCallback"],
}

SPAN_ATTRIBUTES = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.request.max_tokens",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.audio.input_tokens",
    "gen_ai.usage.audio.output_tokens",
    "gen_ai.usage.audio.cache_read.input_tokens",
    "gen_ai.usage.image.input_tokens",
    "gen_ai.usage.image.output_tokens",
    "gen_ai.usage.image.cache_read.input_tokens",
    "gen_ai.usage.cost.amount",
    "gen_ai.usage.cost.currency",
    "gen_ai.usage.cost.source",
    "llm_toll.project",
    "llm_toll.budget.key",
    "llm_toll.budget.limit",
    "llm_toll.budget.spent",
    "llm_toll.budget.period",
    "llm_toll.price.known",
    "llm_toll.price.source",
    "llm_toll.price.version",
    "llm_toll.price.partial",
    "llm_toll.price.unpriced_units",
    "llm_toll.cost.local",
    "llm_toll.usage.estimated",
    "llm_toll.strict.reserved",
    "llm_toll.strict.cap_lowered",
    "llm_toll.strict.requested_max_tokens",
    "error.type",
}
RUN_SPAN_ATTRIBUTES = {
    "llm_toll.project",
    "llm_toll.budget.key",
    "llm_toll.run.max_cost",
    "llm_toll.run.cost",
    "llm_toll.run.requests",
    "error.type",
}
METRICS = {
    "gen_ai.client.token.usage",
    "gen_ai.client.operation.duration",
    "gen_ai.client.operation.cost",
    "gen_ai.client.inference.duration",
    "gen_ai.client.inference.usage.input_tokens",
    "gen_ai.client.inference.usage.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens",
    "gen_ai.client.inference.usage.cache_write.input_tokens",
    "gen_ai.client.inference.usage.reasoning.output_tokens",
    "gen_ai.client.inference.operation.input_tokens",
    "gen_ai.client.inference.operation.output_tokens",
    "llm_toll.cost",
    "llm_toll.cost.difference",
    "llm_toll.budget.limit",
    "llm_toll.budget.spent",
    "llm_toll.budget.utilization",
    "llm_toll.budget.time_remaining",
    "llm_toll.budget.rejections",
    "llm_toll.ratelimit.rejections",
    "llm_toll.calls.unpriced",
}


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert llm_toll.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(llm_toll, name) is not None, name
    assert set(PUBLIC) <= set(dir(llm_toll))
    with pytest.raises(AttributeError):
        llm_toll.no_such_name  # noqa: B018


def test_readme_lists_every_name_added_to_013s() -> None:
    """The README's "Differences from llm-toll 0.13" names each public name 0.13 had not."""
    text = README.read_text(encoding="utf-8")
    bullet = text[text.index("- **More public names**") :].split("\n- ", 1)[0]
    added = set(PUBLIC) - set(V013_PATHS["llm_toll"])
    assert {name for name in added if f"`{name}`" not in bullet} == set()


@pytest.mark.parametrize("path", sorted(V013_PATHS))
def test_v013_import_paths_export_their_names(path: str) -> None:
    module = importlib.import_module(path)
    for name in V013_PATHS[path]:
        value = getattr(module, name)
        if name in PUBLIC:  # one object, whichever path it is imported from
            assert value is getattr(llm_toll, name), f"{path}.{name}"


# Modules a user imports by path: llm-toll 0.13's, the documented entry points
# (``llm_toll.store.reprice.reprice``, the stores by backend, ``llm_toll.budgets``) and the
# demo. Every other module is private: an underscore on its name or on a package above it.
PUBLIC_MODULES = {
    "budgets.py",
    "decorator.py",
    "exceptions.py",
    "rate_limiter.py",
    "reporter.py",
    "integrations/langchain.py",
    "integrations/litellm.py",
    "store/postgres.py",
    "store/reprice.py",
    "store/sqlite.py",
    "demo/replay/server.py",
}


def test_every_other_module_is_marked_private() -> None:
    package = Path(llm_toll.__file__).parent
    public = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
        and not any(part.startswith("_") for part in path.relative_to(package).parts)
    )
    assert set(public) == PUBLIC_MODULES


def test_import_llm_toll_loads_neither_the_sdk_nor_price_data() -> None:
    """Importing the package and the decorator does not load the OpenTelemetry SDK,
    genai-prices or asyncio; their cost is paid when a call needs them."""
    code = (
        "import sys; from llm_toll import track_costs; "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'opentelemetry.sdk', 'genai_prices', 'pydantic', 'asyncio'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def readme_table_names(heading: str) -> set[str]:
    """The backquoted names in the first column of the table under ``heading``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    table = re.search(r"\n(\|.*\|\n)+", text[start:])
    assert table is not None, heading
    found: set[str] = set()
    for row in table.group(0).strip().splitlines()[2:]:
        first_cell = row.split("|")[1]
        found.update(re.findall(r"`([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)`", first_cell))
    return found


def test_readme_span_table_lists_exactly_the_attributes() -> None:
    assert readme_table_names("### Span") == SPAN_ATTRIBUTES


def test_readme_run_span_table_lists_exactly_the_attributes() -> None:
    assert readme_table_names("### Run span") == RUN_SPAN_ATTRIBUTES


def test_readme_metrics_table_lists_exactly_the_instruments() -> None:
    assert readme_table_names("### Metrics") == METRICS


def constants(module: object) -> set[str]:
    return {
        value for key, value in vars(module).items() if key.isupper() and isinstance(value, str)
    }


def test_names_are_defined_once_in_code() -> None:
    """Every name of the tables is a constant of ``telemetry.names`` (span attributes) or
    ``telemetry.metrics`` (instruments); GenAI names come from the semantic-conventions
    package, so a renamed convention fails here."""
    assert constants(names) >= SPAN_ATTRIBUTES | RUN_SPAN_ATTRIBUTES
    assert {n for n in constants(metrics) if n.startswith(("gen_ai.", "llm_toll."))} == METRICS
    assert names.INPUT_TOKENS == "gen_ai.usage.input_tokens"
    assert metrics.METRIC_TOKEN_USAGE == "gen_ai.client.token.usage"
    # GenAI conventions v0.1.0, under OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.
    assert names.CACHE_WRITE_TOKENS == "gen_ai.usage.cache_write.input_tokens"
    assert {name for name, _, _ in names.MODALITY_UNITS.values()} <= SPAN_ATTRIBUTES
