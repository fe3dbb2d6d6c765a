"""Prompt-cache emulation: Anthropic's explicit breakpoints and OpenAI's automatic prefix
cache show up in usage the way the providers report them."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import openai
import pytest
from tests.simulator.conftest import anthropic_client

from tollhouse.simulator.prompt_cache import DEFAULT_MIN_TOKENS, PromptCache, catalog_floor
from tollhouse.tokens.estimate import request_input_tokens

MODEL = "claude-haiku-4-5"  # caches prefixes of 4,096 tokens and more (the catalog)
MANUAL = "Reference manual. " * 1000  # about 4,500 tokens


def cached_system(marker: str, **cache_control: Any) -> list[Any]:
    block = {"type": "text", "text": MANUAL + marker}
    return [{**block, "cache_control": {"type": "ephemeral", **cache_control}}]


def test_first_call_writes_the_cache_and_the_next_reads_it(claude: anthropic.Anthropic) -> None:
    system = cached_system("write-then-read")
    messages: list[Any] = [{"role": "user", "content": "Summarise"}]
    first = claude.messages.create(model=MODEL, max_tokens=20, system=system, messages=messages)
    second = claude.messages.create(model=MODEL, max_tokens=20, system=system, messages=messages)
    written = first.usage.cache_creation_input_tokens
    assert written
    assert written > 1000
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == written
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    total = request_input_tokens({"system": system, "messages": messages})
    assert first.usage.input_tokens + written == total
    assert second.usage.input_tokens == first.usage.input_tokens


def test_streamed_usage_reports_the_cache_too(claude: anthropic.Anthropic) -> None:
    system = cached_system("streamed")
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    claude.messages.create(model=MODEL, max_tokens=20, system=system, messages=messages)
    with claude.messages.stream(model=MODEL, max_tokens=20, system=system, messages=messages) as s:
        final = s.get_final_message()
    assert final.usage.cache_read_input_tokens
    assert final.usage.cache_read_input_tokens > 1000


def test_one_hour_markers_are_reported_apart(claude: anthropic.Anthropic) -> None:
    system = cached_system("one-hour", ttl="1h")
    message = claude.messages.create(
        model=MODEL,
        max_tokens=20,
        system=system,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert message.usage.cache_creation is not None
    assert (
        message.usage.cache_creation.ephemeral_1h_input_tokens
        == message.usage.cache_creation_input_tokens
    )
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_a_longer_conversation_reads_the_earlier_breakpoint(claude: anthropic.Anthropic) -> None:
    system = cached_system("grows")
    turn: Any = {
        "role": "user",
        "content": [{"type": "text", "text": "Q1", "cache_control": {"type": "ephemeral"}}],
    }
    first = claude.messages.create(model=MODEL, max_tokens=20, system=system, messages=[turn])
    longer: list[Any] = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Q2", "cache_control": {"type": "ephemeral"}}],
        },
    ]
    second = claude.messages.create(model=MODEL, max_tokens=20, system=system, messages=longer)
    assert first.usage.cache_creation_input_tokens
    assert second.usage.cache_read_input_tokens  # the system breakpoint, cached by the first call
    assert second.usage.cache_creation_input_tokens  # the new turns up to the second breakpoint


def test_cache_entries_expire_after_their_ttl(serve_simulator: Any) -> None:
    client = anthropic_client(serve_simulator(cache_ttl_seconds=0.2))
    system = cached_system("expires")
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    client.messages.create(model=MODEL, max_tokens=5, system=system, messages=messages)
    time.sleep(0.3)
    again = client.messages.create(model=MODEL, max_tokens=5, system=system, messages=messages)
    assert again.usage.cache_read_input_tokens == 0
    assert again.usage.cache_creation_input_tokens


def test_openai_reports_cached_tokens_for_a_repeated_long_prefix(gpt: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "Policy handbook. " * 400},
        {"role": "user", "content": "First question"},
    ]
    first = gpt.chat.completions.create(model="gpt-4o", messages=messages)
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Second question"},
    ]
    second = gpt.chat.completions.create(model="gpt-4o", messages=messages)
    assert first.usage is not None
    assert second.usage is not None
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= 1024
    assert cached % 128 == 0
    assert cached <= first.usage.prompt_tokens


def test_openai_short_prompts_are_never_cached(gpt: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "short and repeated"}]
    gpt.chat.completions.create(model="gpt-4o", messages=messages)
    again = gpt.chat.completions.create(model="gpt-4o", messages=messages)
    assert again.usage is not None
    assert again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens == 0


def test_a_prefix_below_the_models_minimum_is_neither_written_nor_read(
    claude: anthropic.Anthropic,
) -> None:
    short = [
        {
            "type": "text",
            "text": "Reference manual. " * 400,  # about 1,800 tokens: under Haiku 4.5's 4,096
            "cache_control": {"type": "ephemeral"},
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Summarise"}]
    first = claude.messages.create(model=MODEL, max_tokens=5, system=short, messages=messages)
    second = claude.messages.create(model=MODEL, max_tokens=5, system=short, messages=messages)
    for message in (first, second):
        assert message.usage.cache_creation_input_tokens == 0
        assert message.usage.cache_read_input_tokens == 0
    assert second.usage.input_tokens == request_input_tokens(
        {"system": short, "messages": messages}
    )


def test_the_same_prefix_caches_on_a_model_with_a_lower_minimum(
    claude: anthropic.Anthropic,
) -> None:
    short = [
        {
            "type": "text",
            "text": "Reference manual, sonnet. " * 300,  # about 1,950 tokens: Sonnet 4.5's is 1,024
            "cache_control": {"type": "ephemeral"},
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Summarise"}]
    model = "claude-sonnet-4-5"
    first = claude.messages.create(model=model, max_tokens=5, system=short, messages=messages)
    second = claude.messages.create(model=model, max_tokens=5, system=short, messages=messages)
    assert first.usage.cache_creation_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_the_minimum_is_the_catalogs_or_1024_for_an_unknown_model() -> None:
    assert catalog_floor("claude-haiku-4-5") == 4096
    assert catalog_floor("claude-opus-4-7") == 2048
    assert catalog_floor("no-such-model") == DEFAULT_MIN_TOKENS == 1024
    cache = PromptCache(ttl_s=60, min_tokens=lambda model: 10)
    body = {
        "system": [{"type": "text", "text": "x" * 100, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "x"}],
    }
    assert cache.anthropic_usage(MODEL, body).write_5m > 0
    assert cache.anthropic_usage(MODEL, body).read > 0


def test_a_one_hour_breakpoint_after_a_five_minute_one_is_refused(
    claude: anthropic.Anthropic,
) -> None:
    system = cached_system("order")  # 5 minutes
    late: Any = {"type": "text", "text": "Q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    with pytest.raises(anthropic.BadRequestError, match="must not come after a ttl='5m'"):
        claude.messages.create(
            model=MODEL,
            max_tokens=5,
            system=system,
            messages=[{"role": "user", "content": [late]}],
        )


def test_the_cache_is_per_model() -> None:
    cache = PromptCache(ttl_s=60)
    body = {"system": cached_system("per-model"), "messages": [{"role": "user", "content": "x"}]}
    cache.anthropic_usage("model-a", body)
    assert cache.anthropic_usage("model-b", body).read == 0
    assert cache.anthropic_usage("model-a", body).read > 0


def test_the_cache_holds_a_bounded_number_of_entries() -> None:
    cache = PromptCache(ttl_s=60, max_entries=2)
    bodies = [
        {"system": cached_system(f"bounded-{i}"), "messages": [{"role": "user", "content": "x"}]}
        for i in range(3)
    ]
    for body in bodies:
        cache.anthropic_usage("m", body)
    assert cache.anthropic_usage("m", bodies[0]).read == 0
    assert cache.anthropic_usage("m", bodies[2]).read > 0
