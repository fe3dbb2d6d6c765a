"""Token usage between the two formats, keeping every token billed exactly once.

Anthropic splits input into uncached `input_tokens`, `cache_creation_input_tokens` and
`cache_read_input_tokens`; OpenAI reports one `prompt_tokens` total with the cached part (and,
on servers that report it, the cache-write part) in `prompt_tokens_details`. Thinking tokens
and OpenAI reasoning tokens are both already inside the output total and map to each other.
"""

from __future__ import annotations

from typing import Any


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def anthropic_usage_totals(usage: Any) -> dict[str, int]:
    """The four Anthropic counters of a `usage` object, missing ones as 0."""
    usage = usage if isinstance(usage, dict) else {}
    return {
        "input_tokens": _count(usage.get("input_tokens")),
        "output_tokens": _count(usage.get("output_tokens")),
        "cache_creation_input_tokens": _count(usage.get("cache_creation_input_tokens")),
        "cache_read_input_tokens": _count(usage.get("cache_read_input_tokens")),
    }


def anthropic_usage_to_openai(
    totals: dict[str, int], thinking_tokens: int | None = None
) -> dict[str, Any]:
    """OpenAI `usage` from the four Anthropic counters (see `anthropic_usage_totals`)."""
    cache_read = totals["cache_read_input_tokens"]
    cache_write = totals["cache_creation_input_tokens"]
    prompt = totals["input_tokens"] + cache_write + cache_read
    completion = totals["output_tokens"]
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }
    if thinking_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": thinking_tokens}
    return usage


def openai_usage_to_anthropic(usage: Any) -> dict[str, int]:
    """The four Anthropic counters from an OpenAI `usage` object."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cache_read = _count(details.get("cached_tokens"))
    cache_write = _count(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(_count(usage.get("prompt_tokens")) - cache_read - cache_write, 0),
        "output_tokens": _count(usage.get("completion_tokens")),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def openai_reasoning_tokens(usage: Any) -> int | None:
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) else None


def anthropic_thinking_tokens(usage: Any) -> int | None:
    details = usage.get("output_tokens_details") if isinstance(usage, dict) else None
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) else None
