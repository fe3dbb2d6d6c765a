"""Usage read from both formats' responses and streams, partial streams included."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollhouse.accounting.usage import (
    AnthropicStreamUsage,
    OpenAIStreamUsage,
    Usage,
    usage_from_anthropic,
    usage_from_openai,
)
from tollhouse.wire.sse import SSEEvent


def anthropic_event(doc: dict[str, Any]) -> SSEEvent:
    return SSEEvent(doc["type"], orjson.dumps(doc).decode())


def openai_chunk(doc: dict[str, Any]) -> SSEEvent:
    return SSEEvent(None, orjson.dumps(doc).decode())


DONE = SSEEvent(None, "[DONE]")


def message_start(usage: dict[str, Any]) -> SSEEvent:
    message: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return anthropic_event({"type": "message_start", "message": message})


def text_delta(text: str, index: int = 0) -> SSEEvent:
    delta = {"type": "text_delta", "text": text}
    return anthropic_event({"type": "content_block_delta", "index": index, "delta": delta})


def text_block_start(index: int = 0) -> SSEEvent:
    block = {"type": "text", "text": ""}
    return anthropic_event({"type": "content_block_start", "index": index, "content_block": block})


def message_delta(stop_reason: str, usage: dict[str, Any]) -> SSEEvent:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    return anthropic_event({"type": "message_delta", "delta": delta, "usage": usage})


MESSAGE_STOP = anthropic_event({"type": "message_stop"})


def feed(observer: AnthropicStreamUsage | OpenAIStreamUsage, events: list[SSEEvent]) -> None:
    for event in events:
        observer.feed(event)


# ----------------------------------------------------------------- Anthropic responses


def test_anthropic_usage_splits_cache_writes_by_ttl() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_creation_input_tokens": 2500,
            "cache_read_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 500},
        }
    )

    assert usage == Usage(
        input_tokens=1000,
        output_tokens=500,
        cache_write_5m_tokens=2000,
        cache_write_1h_tokens=500,
        cache_read_tokens=3000,
    )


def test_anthropic_cache_writes_without_a_breakdown_are_five_minute_writes() -> None:
    usage = usage_from_anthropic(
        {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 2000}
    )

    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (2000, 0)


def test_anthropic_thinking_tokens_are_reported_as_reasoning_inside_output() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 10,
            "output_tokens": 900,
            "output_tokens_details": {"thinking_tokens": 700},
        }
    )

    assert (usage.output_tokens, usage.reasoning_tokens) == (900, 700)


def test_anthropic_missing_counters_count_as_zero() -> None:
    assert usage_from_anthropic({"output_tokens": 3}) == Usage(output_tokens=3)


def test_prompt_tokens_add_uncached_input_cache_reads_and_cache_writes() -> None:
    usage = Usage(
        input_tokens=100, cache_write_5m_tokens=20, cache_write_1h_tokens=3, cache_read_tokens=7
    )

    assert usage.prompt_tokens == 130


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="input_tokens must be >= 0"):
        Usage(input_tokens=-1)


# -------------------------------------------------------------------- OpenAI responses


def test_openai_input_excludes_cached_prompt_tokens() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 10000,
            "completion_tokens": 1200,
            "total_tokens": 11200,
            "prompt_tokens_details": {"cached_tokens": 4000, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 800, "audio_tokens": 0},
        }
    )

    assert usage == Usage(
        input_tokens=6000, output_tokens=1200, cache_read_tokens=4000, reasoning_tokens=800
    )


def test_openai_cache_writes_are_taken_out_of_the_input_as_default_retention_writes() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 50000,
            "completion_tokens": 2000,
            "prompt_tokens_details": {"cached_tokens": 10000, "cache_write_tokens": 30000},
        }
    )

    assert (usage.input_tokens, usage.cache_read_tokens) == (10000, 10000)
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (30000, 0)


def test_openai_cache_writes_of_an_extended_retention_request_are_extended_writes() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 500,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cache_write_tokens": 400},
        },
        extended_cache_retention=True,
    )

    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (0, 400)


def test_openai_usage_without_details_is_all_uncached_input() -> None:
    usage = usage_from_openai({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})

    assert usage == Usage(input_tokens=12, output_tokens=3)


# ------------------------------------------------------------------- Anthropic streams

FULL_ANTHROPIC_STREAM = [
    message_start(
        {
            "input_tokens": 1000,
            "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
            "service_tier": "standard",
        }
    ),
    text_block_start(),
    anthropic_event({"type": "ping"}),
    text_delta("Hello"),
    text_delta(", world."),
    anthropic_event({"type": "content_block_stop", "index": 0}),
    message_delta(
        "end_turn",
        {
            "input_tokens": 1000,
            "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 3000,
            "output_tokens": 500,
        },
    ),
    MESSAGE_STOP,
]


def test_a_complete_anthropic_stream_reports_the_final_usage() -> None:
    observer = AnthropicStreamUsage()

    feed(observer, FULL_ANTHROPIC_STREAM)

    assert observer.usage == Usage(
        input_tokens=1000,
        output_tokens=500,
        cache_write_5m_tokens=2000,
        cache_read_tokens=3000,
        service_tier="standard",
    )
    assert observer.complete
    assert observer.stop_reason == "end_turn"
    assert not observer.usage_estimated


def test_an_anthropic_stream_cut_after_a_few_deltas_estimates_its_output() -> None:
    observer = AnthropicStreamUsage()

    feed(
        observer,
        [
            *FULL_ANTHROPIC_STREAM[:1],
            text_block_start(),
            text_delta("Hello, "),
            text_delta("world! How are"),
        ],
    )

    # "Hello, world! How are" is 21 UTF-8 bytes: ceil(21 / 4) = 6 tokens, more than the 1
    # that message_start reported. The input side is what message_start reported.
    usage = observer.usage
    assert usage.output_tokens == 6
    assert usage.estimated
    assert (usage.input_tokens, usage.cache_write_5m_tokens, usage.cache_read_tokens) == (
        1000,
        2000,
        3000,
    )
    assert not observer.complete
    assert observer.stop_reason is None


def test_an_anthropic_output_estimate_counts_thinking_and_tool_input() -> None:
    observer = AnthropicStreamUsage()
    thinking = {"type": "thinking_delta", "thinking": "Let me think it over"}
    tool_json = {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'}

    feed(
        observer,
        [
            message_start({"input_tokens": 50, "output_tokens": 1}),
            anthropic_event({"type": "content_block_delta", "index": 0, "delta": thinking}),
            anthropic_event({"type": "content_block_delta", "index": 1, "delta": tool_json}),
        ],
    )

    # 20 + 17 = 37 bytes generated: ceil(37 / 4) = 10 tokens.
    assert observer.usage.output_tokens == 10


def test_a_cumulative_message_delta_total_keeps_the_one_hour_split_from_message_start() -> None:
    observer = AnthropicStreamUsage()
    split = {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1500}

    feed(
        observer,
        [
            message_start(
                {
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 2000,
                    "cache_creation": split,
                    "output_tokens": 1,
                }
            ),
            message_delta("end_turn", {"cache_creation_input_tokens": 2000, "output_tokens": 40}),
            MESSAGE_STOP,
        ],
    )

    assert (observer.usage.cache_write_5m_tokens, observer.usage.cache_write_1h_tokens) == (
        500,
        1500,
    )


def test_a_message_delta_with_only_output_keeps_the_input_from_message_start() -> None:
    observer = AnthropicStreamUsage()

    feed(
        observer,
        [
            message_start({"input_tokens": 321, "output_tokens": 1}),
            message_delta("max_tokens", {"output_tokens": 64}),
        ],
    )

    assert (observer.usage.input_tokens, observer.usage.output_tokens) == (321, 64)
    assert observer.stop_reason == "max_tokens"
    assert not observer.usage_estimated


def test_an_anthropic_stream_ended_by_an_error_event_is_not_complete() -> None:
    observer = AnthropicStreamUsage()
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

    feed(observer, [*FULL_ANTHROPIC_STREAM[:4], anthropic_event(error)])

    assert not observer.complete
    assert observer.usage_estimated


def test_an_event_that_is_not_json_is_ignored() -> None:
    observer = AnthropicStreamUsage()

    feed(observer, [SSEEvent("content_block_delta", "{not json"), *FULL_ANTHROPIC_STREAM])

    assert observer.usage.output_tokens == 500


# ---------------------------------------------------------------------- OpenAI streams


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> SSEEvent:
    choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
    return openai_chunk(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1764000000,
            "model": "gpt-5-mini-2025-08-07",
            "choices": [choice],
            "usage": None,
        }
    )


USAGE_CHUNK = openai_chunk(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "gpt-5-mini-2025-08-07",
        "choices": [],
        "usage": {
            "prompt_tokens": 10000,
            "completion_tokens": 1200,
            "total_tokens": 11200,
            "prompt_tokens_details": {"cached_tokens": 4000},
            "completion_tokens_details": {"reasoning_tokens": 800},
        },
    }
)

FULL_OPENAI_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": ", world."}),
    chunk(finish_reason="stop"),
    USAGE_CHUNK,
    DONE,
]


def test_a_complete_openai_stream_reports_its_usage_chunk() -> None:
    observer = OpenAIStreamUsage()

    feed(observer, FULL_OPENAI_STREAM)

    assert observer.usage == Usage(
        input_tokens=6000, output_tokens=1200, cache_read_tokens=4000, reasoning_tokens=800
    )
    assert observer.complete
    assert observer.stop_reason == "stop"
    assert not observer.usage_estimated


def test_an_openai_stream_cut_after_a_few_deltas_estimates_its_output() -> None:
    observer = OpenAIStreamUsage()

    feed(
        observer,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hello, "}),
            chunk({"content": "world! How are"}),
        ],
    )

    # 21 UTF-8 bytes seen: ceil(21 / 4) = 6 output tokens; the input is only in the usage chunk.
    assert observer.usage == Usage(output_tokens=6, estimated=True)
    assert not observer.complete
    assert observer.stop_reason is None


def test_an_openai_output_estimate_counts_tool_call_arguments() -> None:
    observer = OpenAIStreamUsage()
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    more = {"index": 0, "function": {"arguments": '{"city": "Paris"}'}}

    feed(
        observer,
        [chunk({"role": "assistant", "tool_calls": [call]}), chunk({"tool_calls": [more]})],
    )

    # "get_weather" (11 bytes) + '{"city": "Paris"}' (17 bytes) = 28 bytes: 7 tokens.
    assert observer.usage.output_tokens == 7


def test_an_openai_stream_whose_done_never_came_still_keeps_its_reported_usage() -> None:
    observer = OpenAIStreamUsage()

    feed(observer, FULL_OPENAI_STREAM[:-1])

    assert observer.usage.output_tokens == 1200
    assert not observer.usage_estimated
    assert not observer.complete
