"""Reading token usage out of LLM responses and streams, and estimating it when absent.

Importing this package imports no LLM SDK: responses are recognised by class name and
module, or by the shape of their JSON.
"""

from llm_toll.usage._base import MAX_TOKENS_PER_CALL, ExtractedUsage, Usage, UsageError
from llm_toll.usage._detect import extract_usage, response_text
from llm_toll.usage._estimate import estimate_tokens, estimate_usage, request_text
from llm_toll.usage._stream import StreamAccumulator

__all__ = [
    "MAX_TOKENS_PER_CALL",
    "ExtractedUsage",
    "StreamAccumulator",
    "Usage",
    "UsageError",
    "estimate_tokens",
    "estimate_usage",
    "extract_usage",
    "request_text",
    "response_text",
]
