"""What a call used and what it cost: usage from every response shape, priced by the catalog."""

from tollhouse.accounting.cost import NO_COST, CallCost, cost_of
from tollhouse.accounting.usage import (
    AnthropicStreamUsage,
    OpenAIStreamUsage,
    ResponsesStreamUsage,
    Usage,
    responses_stop_reason,
    usage_from_anthropic,
    usage_from_openai,
    usage_from_responses,
)

__all__ = [
    "NO_COST",
    "AnthropicStreamUsage",
    "CallCost",
    "OpenAIStreamUsage",
    "ResponsesStreamUsage",
    "Usage",
    "cost_of",
    "responses_stop_reason",
    "usage_from_anthropic",
    "usage_from_openai",
    "usage_from_responses",
]
