"""The llm-toll 0.13.0 tests that fail against llm_toll on purpose, each with its reason.

Keys are 0.13 node ids; values are one of the reasons below, each a deliberate difference.
Every entry is a strict xfail: a listed test that starts passing fails the run, and so
does an entry that names no 0.13 test or gives a reason that is not in ``REASONS``.
"""

from __future__ import annotations

# -- differences listed in the README ("Differences from llm-toll 0.13") --------------------

CROSSING_CALL = (
    "the call that crosses the budget is recorded and returns its result, and only later "
    "calls are refused, before they spend (0.13 raised after paying and dropped the record); "
    "log_usage_if_within_budget always records, and callbacks refuse in their pre-call hooks"
)
PRICES = (
    "prices come from genai-prices, not 0.13's model table: has_model knows genai-prices' "
    "models and local prefixes, list_models lists overrides and local prefixes, and "
    "update_pricing() refreshes genai-prices' data (0.13's price file and its cache are gone)"
)
EXACT_MONEY = (
    "money is exact, in whole nano-USD: a budget margin under 1e-9 USD rounds away, so the "
    "budget is spent and the next call refused (0.13 compared floats)"
)
COLOURS_ON_A_TERMINAL = (
    "colours only on a terminal, or with FORCE_COLOR / CLICOLOR_FORCE "
    "(0.13 coloured any output unless NO_COLOR was set)"
)

PRIVATE_013_INTERNAL = (
    "tests a private llm-toll 0.13 internal: an underscore name, or a module llm_toll has not "
    "got (parsers, streaming, async_streaming, _postgres_store)"
)
PSYCOPG_3 = (
    "the PostgreSQL store is built on psycopg 3 (llm-toll[postgres]); 0.13's test mocks "
    "psycopg2's connection pool"
)
MORE_PUBLIC_NAMES = (
    "llm_toll.__all__ also has the OpenTelemetry names CostSpanProcessor and setup_telemetry, "
    "run, instrument, uninstrument, record_batch, BatchSummary and UnpricedModelError"
)
MORE_LOG_FIELDS = (
    "ledger rows have 0.13's keys first, then more: cost_nanos (exact), provider, operation, "
    "cache and reasoning tokens, price_known, estimated, budget_key, response_id, duration_s"
)
TEXT_IS_ESTIMATED = (
    "a result without usage but with text (a plain str) is recorded, its usage estimated from "
    "the text and flagged estimated (0.13 recorded nothing)"
)
CLI_CREATES_NO_DATABASE = (
    "the CLI never creates a database: a path without one is an error, exit 1 "
    "(0.13 created an empty database and reported no usage)"
)
CLI_MAIN_RETURNS_CODE = (
    "llm_toll.cli.main() returns the exit code (the llm-toll command exits with it) instead "
    "of raising SystemExit; usage errors exit 2, as argparse's do (0.13: 1)"
)

REASONS: tuple[str, ...] = (
    CROSSING_CALL,
    PRICES,
    EXACT_MONEY,
    COLOURS_ON_A_TERMINAL,
    PRIVATE_013_INTERNAL,
    PSYCOPG_3,
    MORE_PUBLIC_NAMES,
    MORE_LOG_FIELDS,
    TEXT_IS_ESTIMATED,
    CLI_CREATES_NO_DATABASE,
    CLI_MAIN_RETURNS_CODE,
)


def _each(reason: str, *nodeids: str) -> dict[str, str]:
    return dict.fromkeys(nodeids, reason)


_E2E = "tests/integration/test_end_to_end.py::"
_ASYNC_STREAMING = "tests/unit/test_async_streaming.py::"
_PARSERS = "tests/unit/test_parsers.py::"
_POSTGRES = "tests/unit/test_postgres_store.py::"
_REMOTE = "tests/unit/test_remote_pricing.py::"
_REPORTER = "tests/unit/test_reporter.py::"
_STORE = "tests/unit/test_store.py::"
_STREAMING = "tests/unit/test_streaming.py::"

_LISTED: list[dict[str, str]] = [
    _each(
        CROSSING_CALL,
        _E2E + "test_budget_exceeded_message_contains_project",
        _E2E + "test_decorator_auto_detect_with_budget",
        _E2E + "test_concurrent_decorated_calls_respect_budget",
        "tests/unit/test_decorator.py::TestTrackCostsBehavior"
        "::test_post_call_atomic_budget_enforcement",
        "tests/unit/test_langchain_callback.py::TestLangChainCallback"
        "::test_on_llm_end_budget_exceeded_raises",
        "tests/unit/test_litellm_callback.py::TestLiteLLMCallback"
        "::test_log_success_budget_exceeded_raises",
        _STORE + "TestLogUsageIfWithinBudget::test_raises_when_already_at_budget",
        _STORE + "TestLogUsageIfWithinBudget::test_raises_when_call_would_exceed_budget",
        _STORE + "TestLogUsageIfWithinBudget::test_concurrent_threads_respect_budget",
    ),
    _each(
        PRICES,
        "tests/unit/test_pricing.py::TestPricingRegistryBuiltins::test_list_models",
        "tests/unit/test_pricing.py::TestLocalOllamaPricing"
        "::test_ollama_model_cached_after_prefix_match",
        _REMOTE + "TestUpdatePricing::test_fetches_and_applies",
        _REMOTE + "TestUpdatePricing::test_uses_fresh_cache",
        _REMOTE + "TestUpdatePricing::test_refetches_stale",
        _REMOTE + "TestUpdatePricing::test_network_failure_returns_false",
        _REMOTE + "TestUpdatePricing::test_network_failure_uses_stale_cache",
    ),
    _each(EXACT_MONEY, _E2E + "test_streaming_with_budget_enforcement"),
    _each(
        COLOURS_ON_A_TERMINAL,
        _REPORTER + "TestCostReporterOutput::test_report_call_green_cost",
        _REPORTER + "TestCostReporterOutput::test_report_call_yellow_cost",
        _REPORTER + "TestCostReporterOutput::test_report_call_red_cost",
        _REPORTER + "TestCostReporterOutput::test_report_call_cyan_model",
        _REPORTER + "TestCostReporterSession::test_session_bold_cost",
    ),
    _each(
        PRIVATE_013_INTERNAL,
        _E2E + "test_cost_reporter_session_cost_starts_at_zero",
        _E2E + "test_auto_detect_usage_returns_none_for_unknown",
        _E2E + "test_auto_detect_usage_returns_none_for_string",
        _E2E + "test_auto_detect_usage_returns_none_for_none",
        _E2E + "test_individual_parsers_return_none",
        _E2E + "test_no_import_cycles",
        *(
            _ASYNC_STREAMING + name
            for name in (
                "TestIsAsyncStream::test_async_generator_is_stream",
                "TestIsAsyncStream::test_sync_generator_not_async_stream",
                "TestIsAsyncStream::test_regular_object_not_async_stream",
                "TestIsAsyncStream::test_async_iterator_with_aclose_is_stream",
                "TestIsAsyncStream::test_list_not_async_stream",
                "TestIsAsyncStream::test_bytes_not_async_stream",
                "TestWrapAsyncStream::test_yields_all_chunks",
                "TestWrapAsyncStream::test_logs_cost_after_exhaustion",
                "TestWrapAsyncStream::test_logs_cost_on_early_break",
                "TestWrapAsyncStream::test_budget_enforcement_in_async_stream",
            )
        ),
        *(
            _PARSERS + name
            for name in (
                "TestParsers::test_parse_openai_response_returns_none",
                "TestParsers::test_parse_anthropic_response_returns_none",
                "TestParsers::test_parse_gemini_response_returns_none",
                "TestParsers::test_auto_detect_usage_returns_none",
                "TestParsers::test_auto_detect_usage_short_circuits_on_match",
                "TestOpenAIParser::test_happy_path",
                "TestOpenAIParser::test_usage_none",
                "TestOpenAIParser::test_missing_choices",
                "TestOpenAIParser::test_missing_model",
                "TestOpenAIParser::test_missing_usage",
                "TestOpenAIParser::test_prompt_tokens_none",
                "TestOpenAIParser::test_completion_tokens_none",
                "TestOpenAIParser::test_both_tokens_zero",
                "TestOpenAIParser::test_dict_input",
                "TestOpenAIParser::test_string_input",
                "TestOpenAIParser::test_none_input",
                "TestAnthropicParser::test_happy_path",
                "TestAnthropicParser::test_usage_none",
                "TestAnthropicParser::test_missing_stop_reason",
                "TestAnthropicParser::test_missing_content",
                "TestAnthropicParser::test_missing_usage",
                "TestAnthropicParser::test_input_tokens_none",
                "TestAnthropicParser::test_output_tokens_none",
                "TestAnthropicParser::test_openai_response_rejected",
                "TestAnthropicParser::test_anthropic_response_rejected_by_openai",
                "TestAutoDetectIntegration::test_openai_response_auto_detected",
                "TestAutoDetectIntegration::test_anthropic_response_auto_detected",
                "TestAutoDetectIntegration::test_unknown_object_returns_none",
                "TestAutoDetectIntegration::test_gemini_response_auto_detected",
                "TestLiteLLMParserCompat::test_litellm_response_parsed_by_openai_parser",
                "TestLiteLLMParserCompat::test_litellm_response_auto_detected",
                "TestGeminiParser::test_happy_path",
                "TestGeminiParser::test_happy_path_without_model_version",
                "TestGeminiParser::test_usage_metadata_none",
                "TestGeminiParser::test_missing_candidates_attr",
                "TestGeminiParser::test_missing_usage_metadata_attr",
                "TestGeminiParser::test_non_int_token_counts",
                "TestGeminiParser::test_openai_response_rejected",
                "TestGeminiParser::test_anthropic_response_rejected",
                "TestGeminiParser::test_dict_input",
                "TestGeminiParser::test_none_input",
            )
        ),
        *(
            _POSTGRES + name
            for name in (
                "TestPostgresStoreInstantiation::test_postgres_store_is_base_store",
                "TestPostgresStoreInstantiation::test_schema_initialization",
                "TestPostgresStoreInstantiation::test_pool_created_with_dsn",
                "TestPostgresStoreLogUsage::test_log_usage_executes_insert",
                "TestPostgresStoreLogUsage::test_log_usage_returns_conn_to_pool",
                "TestPostgresStoreGetTotalCost::test_get_total_cost_returns_float",
                "TestPostgresStoreGetTotalCost::test_get_total_cost_no_data_returns_zero",
                "TestPostgresStoreGetTotalCost::test_get_total_cost_queries_correct_project",
                "TestPostgresStoreClose::test_close_closes_pool",
                "TestPostgresStoreClose::test_close_via_context_manager",
                "TestPostgresStoreImportError::test_import_error_message",
            )
        ),
        "tests/unit/test_pricing.py::TestBoundedCache::test_cache_does_not_grow_unbounded",
        "tests/unit/test_rate_limiter.py::TestRateLimiterInstantiation"
        "::test_instantiate_with_custom_clock",
        "tests/unit/test_rate_limiter.py::TestRPMAndTPMCombined::test_both_limits_none_is_noop",
        _REMOTE + "TestFetchRemotePricing::test_fetch_valid_json",
        _REMOTE + "TestFetchRemotePricing::test_fetch_network_error",
        _REMOTE + "TestFetchRemotePricing::test_fetch_malformed_json",
        _REMOTE + "TestFetchRemotePricing::test_fetch_empty_models",
        _REMOTE + "TestCache::test_write_and_read_cache",
        _REMOTE + "TestCache::test_read_missing",
        _REMOTE + "TestCache::test_read_corrupt",
        _REPORTER + "TestCostReporterOutput::test_enabled_false_still_accumulates",
        _REPORTER + "TestCostReporterSession::test_reset_zeroes_accumulators",
        _REPORTER + "TestCostReporterThreadSafety::test_concurrent_report_calls",
        _STORE + "TestUsageStorePersistence::test_sql_injection_project_name",
        *(
            _STREAMING + name
            for name in (
                "TestEstimateTokens::test_empty_string",
                "TestEstimateTokens::test_short_text",
                "TestEstimateTokens::test_typical_text",
                "TestIsSyncStream::test_generator_is_stream",
                "TestIsSyncStream::test_plain_iterator_not_stream",
                "TestIsSyncStream::test_sdk_stream_like_object_is_stream",
                "TestIsSyncStream::test_string_not_stream",
                "TestIsSyncStream::test_bytes_not_stream",
                "TestIsSyncStream::test_dict_not_stream",
                "TestIsSyncStream::test_list_not_stream",
                "TestIsSyncStream::test_none_not_stream",
                "TestIsSyncStream::test_regular_object_not_stream",
                "TestStreamAccumulatorOpenAI::test_accumulates_openai_chunks_with_usage",
                "TestStreamAccumulatorOpenAI::test_accumulates_openai_chunks_without_usage",
                "TestStreamAccumulatorOpenAI::test_empty_stream",
                "TestStreamAccumulatorOpenAI::test_none_content_in_chunks",
                "TestStreamAccumulatorAnthropic::test_accumulates_anthropic_events",
                "TestStreamAccumulatorAnthropic::test_anthropic_missing_output_tokens",
                "TestStreamAccumulatorGemini::test_accumulates_gemini_chunks_with_usage",
                "TestStreamAccumulatorGemini::test_accumulates_gemini_chunks_without_usage",
                "TestStreamAccumulatorGemini::test_gemini_chunks_without_model_version",
                "TestWrapSyncStream::test_yields_all_chunks",
                "TestWrapSyncStream::test_logs_cost_after_exhaustion",
                "TestWrapSyncStream::test_logs_cost_on_early_break",
                "TestWrapSyncStream::test_no_logging_for_empty_stream",
                "TestWrapSyncStream::test_budget_enforcement_in_stream",
                "TestWrapSyncStream::test_model_override",
                "TestWrapSyncStream::test_mid_stream_exception_logs_partial_usage",
            )
        ),
    ),
    _each(
        PSYCOPG_3,
        "tests/unit/test_store_factory.py::TestCreateStoreFactory::test_create_store_postgres_url",
        "tests/unit/test_store_factory.py::TestCreateStoreFactory"
        "::test_create_store_postgres_scheme",
    ),
    _each(MORE_PUBLIC_NAMES, _E2E + "test_full_public_api_importable"),
    _each(MORE_LOG_FIELDS, _E2E + "test_store_get_usage_logs_end_to_end"),
    _each(TEXT_IS_ESTIMATED, _E2E + "test_decorator_bare_no_tracking_on_plain_response"),
    _each(CLI_CREATES_NO_DATABASE, "tests/unit/test_cli.py::TestCliStats::test_stats_empty_db"),
    _each(
        CLI_MAIN_RETURNS_CODE,
        "tests/unit/test_cli.py::TestCliReset::test_reset_no_project",
        "tests/unit/test_cli.py::TestCliVersion::test_version",
    ),
]

EXPECTED: dict[str, str] = {}
for _group in _LISTED:
    for _nodeid, _reason in _group.items():
        if _nodeid in EXPECTED:
            raise ValueError(f"{_nodeid} is listed twice")
        EXPECTED[_nodeid] = _reason
