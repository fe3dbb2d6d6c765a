"""What a call used and what it cost: usage from every response shape, priced by the catalog."""

from tollhouse.accounting.cost import NO_COST, CallCost, cost_of
from tollhouse.accounting.usage import (
    AnthropicStreamUsage,
    OpenAIStreamUsage,
    Usage,
    usage_from_anthropic,
    usage_from_openai,
)

__all__ = [
    "NO_COST",
    "AnthropicStreamUsage",
    "CallCost",
    "OpenAIStreamUsage",
    "Usage",
    "cost_of",
    "usage_from_anthropic",
    "usage_from_openai",
]
