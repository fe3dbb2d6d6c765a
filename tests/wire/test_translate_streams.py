"""Stream translation, checked by what the official SDKs assemble from the relayed bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import orjson
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from tollhouse.wire.anthropic_openai import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tollhouse.wire.sse import SSEEvent, SSEParser

Relay = Callable[[Any, bytes], bytes]
OpenAIRead = Callable[[bytes], ChatCompletion]
AnthropicRead = Callable[[bytes], Message]


# ------------------------------------------------------------ upstream Anthropic streams


def anthropic_sse(*docs: dict[str, Any]) -> bytes:
    """Events framed as the Messages API frames them: `event:` line named after `type`."""
    return b"".join(
        b"event: " + doc["type"].encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"
        for doc in docs
    )


def message_start(
    input_tokens: int = 25, cache_read: int = 0, cache_write: int = 0
) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5-20250929",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
                "output_tokens": 1,
                "service_tier": "standard",
            },
        },
    }


def text_block(index: int, *pieces: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        },
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": p},
            }
            for p in pieces
        ),
        {"type": "content_block_stop", "index": index},
    ]


def tool_block(index: int, tool_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    start = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in fragments
        ),
        {"type": "content_block_stop", "index": index},
    ]


def thinking_block(index: int, thought: str) -> list[dict[str, Any]]:
    start = {"type": "thinking", "thinking": "", "signature": ""}
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "thinking_delta", "thinking": thought},
        },
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": "EqQB"},
        },
        {"type": "content_block_stop", "index": index},
    ]


def message_end(stop_reason: str, output_tokens: int, **usage: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens, **usage},
        },
        {"type": "message_stop"},
    ]


PING = {"type": "ping"}


# ------------------------------------------------------------ upstream OpenAI streams


def openai_sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    body = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_eb9dce56a8",
        "choices": [
            {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": None,
    }


def role_chunk(content: str | None = "") -> dict[str, Any]:
    return chunk({"role": "assistant", "content": content, "refusal": None})


def tool_call_chunks(index: int, call_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    first = {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    return [
        chunk({"tool_calls": [first]}),
        *(
            chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]})
            for f in fragments
        ),
    ]


def usage_chunk(
    prompt: int, completion: int, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    doc = chunk()
    doc["choices"] = []
    doc["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }
    return doc


def events_of(body: bytes) -> list[SSEEvent]:
    return SSEParser().feed(body)


# ============================================================ Anthropic → OpenAI


def test_anthropic_text_stream_assembles_into_the_same_text_in_the_openai_sdk(
    relay: Relay, openai_sdk_stream: OpenAIRead
) -> None:
    upstream = anthropic_sse(
        message_start(), PING, *text_block(0, "Hello", ", wor", "ld!"), *message_end("end_turn", 12)
    )
    completion = openai_sdk_stream(relay(AnthropicToOpenAIStream("gpt-4o", False), upstream))

    assert completion.choices[0].message.content == "Hello, world!"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id == "chatcmpl-01XFDUDYJgAACzvnptvVoYEL"
    assert completion.model == "gpt-4o"


def test_anthropic_stream_first_chunk_carries_the_assistant_role_and_empty_content(
    relay: Relay,
) -> None:
    upstream = anthropic_sse(message_start(), *text_block(0, "Hi"), *message_end("end_turn", 2))
    first = events_of(relay(AnthropicToOpenAIStream("gpt-4o", False), upstream))[0].json()

    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first["object"] == "chat.completion.chunk"


def test_anthropic_tool_use_stream_assembles_into_openai_tool_calls(
    relay: Relay, openai_sdk_stream: OpenAIRead
) -> None:
    upstream = anthropic_sse(
        message_start(),
        *text_block(0, "Let me check both."),
        *tool_block(1, "toolu_01A", "get_weather", '{"city": ', '"Paris"}'),
        *tool_block(2, "toolu_01B", "get_time", "", '{"tz": "Europe/Paris"}'),
        *message_end("tool_use", 80),
    )
    completion = openai_sdk_stream(relay(AnthropicToOpenAIStream("gpt-4o", False), upstream))
    message = completion.choices[0].message

    assert message.content == "Let me check both."
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = [
        (c.id, c.function.name, orjson.loads(c.function.arguments))
        for c in message.tool_calls or []
        if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]
    assert calls == [
        ("toolu_01A", "get_weather", {"city": "Paris"}),
        ("toolu_01B", "get_time", {"tz": "Europe/Paris"}),
    ]


def test_anthropic_thinking_is_left_out_of_the_openai_stream(
    relay: Relay, openai_sdk_stream: OpenAIRead
) -> None:
    upstream = anthropic_sse(
        message_start(),
        *thinking_block(0, "The user greets me."),
        *text_block(1, "Hello!"),
        *message_end("end_turn", 30),
    )
    completion = openai_sdk_stream(relay(AnthropicToOpenAIStream("gpt-4o", False), upstream))

    assert completion.choices[0].message.content == "Hello!"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter")],
)
def test_anthropic_stop_reason_becomes_the_openai_finish_reason(
    relay: Relay, openai_sdk_stream: OpenAIRead, stop_reason: str, finish_reason: str
) -> None:
    upstream = anthropic_sse(message_start(), *text_block(0, "abc"), *message_end(stop_reason, 3))
    completion = openai_sdk_stream(relay(AnthropicToOpenAIStream("gpt-4o", False), upstream))

    assert completion.choices[0].finish_reason == finish_reason


def test_anthropic_usage_arrives_in_the_openai_usage_chunk_when_include_usage(
    relay: Relay, openai_sdk_stream: OpenAIRead
) -> None:
    upstream = anthropic_sse(
        message_start(input_tokens=10, cache_read=1000, cache_write=200),
        *text_block(0, "Hi"),
        *message_end("end_turn", 7),
    )
    completion = openai_sdk_stream(relay(AnthropicToOpenAIStream("gpt-4o", True), upstream))

    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 1210
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == 1217
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 1000


def test_openai_chunks_have_null_usage_and_end_with_an_empty_choices_usage_chunk(
    relay: Relay,
) -> None:
    upstream = anthropic_sse(message_start(), *text_block(0, "Hi"), *message_end("end_turn", 2))
    body = relay(AnthropicToOpenAIStream("gpt-4o", True), upstream)
    events = events_of(body)

    assert events[-1].data == "[DONE]"
    *chunks, usage = [e.json() for e in events[:-1]]
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in chunks)
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 2


def test_openai_chunks_have_no_usage_field_without_include_usage(relay: Relay) -> None:
    upstream = anthropic_sse(message_start(), *text_block(0, "Hi"), *message_end("end_turn", 2))
    events = events_of(relay(AnthropicToOpenAIStream("gpt-4o", False), upstream))

    assert events[-1].data == "[DONE]"
    assert all("usage" not in e.json() for e in events[:-1])


def test_anthropic_message_delta_usage_replaces_the_running_usage(relay: Relay) -> None:
    translator = AnthropicToOpenAIStream("gpt-4o", False)
    relay(
        translator,
        anthropic_sse(
            message_start(input_tokens=10, cache_read=5),
            *text_block(0, "Hi"),
            *message_end("max_tokens", 40, input_tokens=12),
        ),
    )

    assert translator.usage == {
        "input_tokens": 12,
        "output_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
        "service_tier": "standard",  # kept for the accounting, as the upstream said it
    }
    assert translator.stop_reason == "max_tokens"


def test_partial_anthropic_stream_usage_estimates_the_output_so_far() -> None:
    translator = AnthropicToOpenAIStream("gpt-4o", False)
    for event in events_of(anthropic_sse(message_start(), *text_block(0, "x" * 400)[:2])):
        translator.feed(event)

    assert translator.usage["output_tokens"] == 100
    assert translator.stop_reason is None


def test_anthropic_error_event_becomes_an_openai_error_and_ends_the_stream(
    relay: Relay, openai_sdk_stream: OpenAIRead
) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream = anthropic_sse(message_start(), *text_block(0, "Hel")[:2], error)
    body = relay(AnthropicToOpenAIStream("gpt-4o", True), upstream)

    assert b"[DONE]" not in body
    assert events_of(body)[-1].json() == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
    }
    with pytest.raises(openai.APIError, match="Overloaded"):
        openai_sdk_stream(body)


# ============================================================ OpenAI → Anthropic


def test_openai_text_stream_assembles_into_the_same_text_in_the_anthropic_sdk(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    upstream = openai_sse(
        role_chunk(),
        chunk({"content": "Hello"}),
        chunk({"content": ", world!"}),
        chunk(finish_reason="stop"),
        usage_chunk(prompt=20, completion=4),
    )
    message = anthropic_sdk_stream(
        relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 18), upstream)
    )

    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "Hello, world!")
    ]
    assert message.stop_reason == "end_turn"
    assert message.id == "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert message.model == "claude-sonnet-4-6"
    assert message.usage.output_tokens == 4


def test_openai_tool_call_stream_assembles_into_anthropic_tool_use_blocks(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    upstream = openai_sse(
        role_chunk(None),
        *tool_call_chunks(0, "call_A", "get_weather", '{"ci', 'ty": "Paris"}'),
        *tool_call_chunks(1, "call_B", "get_time", '{"tz": "Europe/Paris"}'),
        chunk(finish_reason="tool_calls"),
        usage_chunk(prompt=50, completion=30),
    )
    message = anthropic_sdk_stream(
        relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 45), upstream)
    )

    assert message.stop_reason == "tool_use"
    assert [
        (b.type, getattr(b, "id", None), getattr(b, "name", None), getattr(b, "input", None))
        for b in message.content
    ] == [
        ("tool_use", "call_A", "get_weather", {"city": "Paris"}),
        ("tool_use", "call_B", "get_time", {"tz": "Europe/Paris"}),
    ]


def test_openai_text_then_tool_call_closes_the_text_block_before_the_tool_use_block(
    relay: Relay,
) -> None:
    upstream = openai_sse(
        role_chunk(),
        chunk({"content": "Checking."}),
        *tool_call_chunks(0, "call_A", "get_weather", '{"city": "Paris"}'),
        chunk(finish_reason="tool_calls"),
        usage_chunk(prompt=50, completion=30),
    )
    events = events_of(relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 45), upstream))
    sequence = [(e.event, e.json().get("index")) for e in events]

    assert sequence == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]


def test_openai_usage_chunk_after_finish_reaches_the_anthropic_message_delta(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    upstream = openai_sse(
        role_chunk(),
        chunk({"content": "Hi"}),
        chunk(finish_reason="stop"),
        usage_chunk(prompt=1500, completion=9, cached=1024),
    )
    message = anthropic_sdk_stream(
        relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 1400), upstream)
    )

    assert message.usage.input_tokens == 476
    assert message.usage.cache_read_input_tokens == 1024
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens == 9


def test_anthropic_message_delta_waits_for_the_openai_usage_chunk() -> None:
    translator = OpenAIToAnthropicStream("claude-sonnet-4-6", 10)
    upstream = openai_sse(
        role_chunk(), chunk({"content": "Hi"}), chunk(finish_reason="stop"), done=False
    )
    before_usage = [frame for event in events_of(upstream) for frame in translator.feed(event)]
    after_usage = [
        frame
        for event in events_of(openai_sse(usage_chunk(prompt=12, completion=3)))
        for frame in translator.feed(event)
    ]

    assert b"message_delta" not in b"".join(before_usage)
    assert [e.event for e in events_of(b"".join(after_usage))] == ["message_delta", "message_stop"]
    assert translator.finish() == []


def test_openai_stream_without_usage_ends_at_done_with_the_input_estimate(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    upstream = openai_sse(role_chunk(), chunk({"content": "x" * 40}), chunk(finish_reason="length"))
    translator = OpenAIToAnthropicStream("claude-sonnet-4-6", 33)
    message = anthropic_sdk_stream(relay(translator, upstream))

    assert message.stop_reason == "max_tokens"
    assert message.usage.input_tokens == 33
    assert message.usage.output_tokens == 10
    assert translator.usage["output_tokens"] == 10


def test_openai_refusal_stream_becomes_text_with_the_refusal_stop_reason(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    upstream = openai_sse(
        role_chunk(None),
        chunk({"refusal": "I can't "}),
        chunk({"refusal": "help with that."}),
        chunk(finish_reason="stop"),
    )
    message = anthropic_sdk_stream(relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 5), upstream))

    assert [getattr(b, "text", None) for b in message.content] == ["I can't help with that."]
    assert message.stop_reason == "refusal"


def test_finish_ends_an_openai_stream_that_sent_no_done(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    upstream = openai_sse(
        role_chunk(), chunk({"content": "Hi"}), chunk(finish_reason="stop"), done=False
    )
    message = anthropic_sdk_stream(relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 5), upstream))

    assert [getattr(b, "text", None) for b in message.content] == ["Hi"]
    assert message.stop_reason == "end_turn"


def test_openai_chunks_with_empty_choices_are_skipped(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    empty = chunk()
    empty["choices"] = []
    upstream = openai_sse(
        role_chunk(),
        empty,
        chunk({"content": "ok"}),
        empty,
        chunk(finish_reason="stop"),
        usage_chunk(prompt=5, completion=1),
    )
    message = anthropic_sdk_stream(relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 5), upstream))

    assert [getattr(b, "text", None) for b in message.content] == ["ok"]


def test_openai_tool_calls_without_index_are_told_apart_by_id(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    calls = [
        {"id": "call_A", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
        {"id": "call_B", "type": "function", "function": {"name": "b", "arguments": '{"y": 2}'}},
    ]
    upstream = openai_sse(
        role_chunk(None), chunk({"tool_calls": calls}), chunk(finish_reason="tool_calls")
    )
    message = anthropic_sdk_stream(relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 5), upstream))

    assert [(getattr(b, "id", None), getattr(b, "input", None)) for b in message.content] == [
        ("call_A", {"x": 1}),
        ("call_B", {"y": 2}),
    ]


def test_openai_stream_usage_records_cached_tokens_and_stop_reason(relay: Relay) -> None:
    translator = OpenAIToAnthropicStream("claude-sonnet-4-6", 1400)
    relay(
        translator,
        openai_sse(
            role_chunk(),
            chunk({"content": "Hi"}),
            chunk(finish_reason="stop"),
            usage_chunk(prompt=1500, completion=9, cached=1024),
        ),
    )

    assert translator.usage == {
        "input_tokens": 476,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1024,
    }
    assert translator.stop_reason == "end_turn"


def test_openai_error_chunk_becomes_an_anthropic_error_event_and_ends_the_stream(
    relay: Relay, anthropic_sdk_stream: AnthropicRead
) -> None:
    error = {
        "error": {
            "message": "Rate limit reached",
            "type": "rate_limit_error",
            "param": None,
            "code": None,
        }
    }
    upstream = openai_sse(role_chunk(), chunk({"content": "Hel"}), error, chunk({"content": "lo"}))
    body = relay(OpenAIToAnthropicStream("claude-sonnet-4-6", 5), upstream)
    last = events_of(body)[-1]

    assert b"message_stop" not in body
    assert b"lo" not in body.split(b"event: error")[1]
    assert last.event == "error"
    assert last.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached"},
    }
    with pytest.raises(anthropic.APIStatusError, match="Rate limit reached"):
        anthropic_sdk_stream(body)
