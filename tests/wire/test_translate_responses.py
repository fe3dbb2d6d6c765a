"""Whole-response and error-body translation, validated with the official SDKs' models."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from tollhouse.errors import UpstreamError
from tollhouse.wire.anthropic_openai import (
    ANTHROPIC_TO_OPENAI_FINISH,
    OPENAI_TO_ANTHROPIC_STOP,
    anthropic_response_to_openai,
    openai_response_to_anthropic,
    translate_error_body,
)


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
            **usage,
        },
    }


def openai_completion(
    message: dict[str, Any], finish_reason: str = "stop", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "refusal": None, "annotations": [], **message},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage
        or {
            "prompt_tokens": 1117,
            "completion_tokens": 46,
            "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035",
    }


def to_openai(body: dict[str, Any]) -> ChatCompletion:
    return ChatCompletion.model_validate(anthropic_response_to_openai(body, "gpt-4o"))


def to_anthropic(body: dict[str, Any]) -> Message:
    return Message.model_validate(openai_response_to_anthropic(body, "claude-sonnet-4-6"))


def json_client(status: int, body: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": "application/json"}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def openai_client_answering(status: int, body: bytes) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test",
        base_url="http://gateway.test/v1",
        http_client=json_client(status, body),
        max_retries=0,
    )


def anthropic_client_answering(status: int, body: bytes) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test",
        base_url="http://gateway.test",
        http_client=json_client(status, body),
        max_retries=0,
    )


# ============================================================ Anthropic → OpenAI


def test_anthropic_text_response_is_a_valid_chat_completion_for_the_requested_model() -> None:
    completion = to_openai(anthropic_message([{"type": "text", "text": "Hello!"}]))

    assert completion.id == "chatcmpl-013Zva2CMHLNnXjNJJKqJ2EF"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == "Hello!"
    assert completion.choices[0].finish_reason == "stop"


def test_anthropic_text_blocks_are_joined_and_thinking_is_dropped() -> None:
    content = [
        {"type": "thinking", "thinking": "Greeting.", "signature": "EqQB"},
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": " there."},
    ]

    assert to_openai(anthropic_message(content)).choices[0].message.content == "Hello there."


def test_anthropic_tool_use_becomes_tool_calls_with_json_arguments() -> None:
    content = [
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    choice = to_openai(anthropic_message(content, "tool_use")).choices[0]

    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = (choice.message.tool_calls or [])[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert (call.id, call.function.name) == ("toolu_01A", "get_weather")
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}


def test_anthropic_usage_counts_cache_tokens_in_prompt_tokens() -> None:
    body = anthropic_message(
        [{"type": "text", "text": "Hi"}],
        input_tokens=10,
        output_tokens=5,
        cache_creation_input_tokens=200,
        cache_read_input_tokens=1000,
    )
    usage = to_openai(body).usage

    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1210, 5, 1215)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1000


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_anthropic_stop_reason_maps_to_the_finish_reason(
    stop_reason: str, finish_reason: str
) -> None:
    body = anthropic_message([{"type": "text", "text": "x"}], stop_reason)

    assert to_openai(body).choices[0].finish_reason == finish_reason
    assert ANTHROPIC_TO_OPENAI_FINISH[stop_reason] == finish_reason


def test_translated_completion_reaches_the_openai_sdk_unchanged() -> None:
    body = anthropic_response_to_openai(
        anthropic_message([{"type": "text", "text": "Hi"}]), "gpt-4o"
    )
    completion = openai_client_answering(200, orjson.dumps(body)).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content == "Hi"


# ============================================================ OpenAI → Anthropic


def test_openai_text_response_is_a_valid_message_for_the_requested_model() -> None:
    message = to_anthropic(openai_completion({"content": "Hello!"}))

    assert message.id == "msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert message.model == "claude-sonnet-4-6"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Hello!")]
    assert message.stop_reason == "end_turn"


def test_openai_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    message = to_anthropic(openai_completion({"content": None, "tool_calls": [call]}, "tool_calls"))

    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("call_abc", "get_weather", {"city": "Paris"})


def test_openai_tool_call_with_unparseable_arguments_is_an_upstream_error() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"city":'}}

    with pytest.raises(UpstreamError, match="not a JSON object"):
        openai_response_to_anthropic(openai_completion({"tool_calls": [call]}, "tool_calls"), "m")


def test_openai_response_without_choices_is_an_upstream_error() -> None:
    body = openai_completion({"content": "x"})
    body["choices"] = []

    with pytest.raises(UpstreamError):
        openai_response_to_anthropic(body, "m")


def test_openai_refusal_becomes_text_with_the_refusal_stop_reason() -> None:
    message = to_anthropic(
        openai_completion({"content": None, "refusal": "I can't help with that."})
    )

    assert [getattr(b, "text", None) for b in message.content] == ["I can't help with that."]
    assert message.stop_reason == "refusal"


def test_openai_usage_splits_cached_tokens_out_of_input_tokens() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
        "completion_tokens_details": {"reasoning_tokens": 128},
    }
    message = to_anthropic(openai_completion({"content": "x"}, usage=usage))

    assert message.usage.input_tokens == 86
    assert message.usage.cache_read_input_tokens == 1920
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens == 300
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 128


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_openai_finish_reason_maps_to_the_stop_reason(finish_reason: str, stop_reason: str) -> None:
    assert (
        to_anthropic(openai_completion({"content": "x"}, finish_reason)).stop_reason == stop_reason
    )
    assert OPENAI_TO_ANTHROPIC_STOP[finish_reason] == stop_reason


def test_translated_message_reaches_the_anthropic_sdk_unchanged() -> None:
    body = openai_response_to_anthropic(openai_completion({"content": "Hi"}), "claude-sonnet-4-6")
    message = anthropic_client_answering(200, orjson.dumps(body)).messages.create(
        model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )

    assert [getattr(b, "text", None) for b in message.content] == ["Hi"]


# ============================================================ error bodies


def test_anthropic_error_body_becomes_an_openai_error_with_the_same_message() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    body = orjson.dumps(
        {"type": "error", "error": error, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    )

    assert orjson.loads(translate_error_body(body, 529, "openai")) == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
    }


def test_openai_error_body_becomes_an_anthropic_error_with_the_same_message() -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": "Rate limit reached for gpt-4o",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    )

    assert orjson.loads(translate_error_body(body, 429, "anthropic")) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached for gpt-4o"},
    }


def test_anthropic_error_body_keeps_its_own_type_into_anthropic() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    translated = translate_error_body(
        orjson.dumps({"type": "error", "error": error}), 529, "anthropic"
    )

    assert orjson.loads(translated) == {"type": "error", "error": error}


def test_openai_error_keeps_its_type_param_and_code_into_openai() -> None:
    error = {
        "message": "This model's maximum context length is 128000 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    translated = translate_error_body(orjson.dumps({"error": error}), 400, "openai")

    assert orjson.loads(translated) == {"error": error}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "model \'llama3\' not found"}', "model 'llama3' not found"),
        (
            b'{"object":"error","message":"max_tokens is too large","type":"BadRequestError"}',
            "max_tokens is too large",
        ),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"", "Upstream returned HTTP 404."),
    ],
)
def test_loose_or_unreadable_error_bodies_keep_their_message(body: bytes, message: str) -> None:
    translated = orjson.loads(translate_error_body(body, 404, "anthropic"))

    assert translated == {"type": "error", "error": {"type": "not_found_error", "message": message}}


def test_translated_error_raises_the_matching_openai_sdk_exception() -> None:
    upstream = b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}'
    client = openai_client_answering(429, translate_error_body(upstream, 429, "openai"))

    with pytest.raises(openai.RateLimitError, match="Slow down") as excinfo:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    assert excinfo.value.type == "rate_limit_error"


def test_translated_error_raises_the_matching_anthropic_sdk_exception() -> None:
    error = {
        "message": "Invalid API key",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
    upstream = orjson.dumps({"error": error})
    client = anthropic_client_answering(401, translate_error_body(upstream, 401, "anthropic"))

    with pytest.raises(anthropic.AuthenticationError, match="Invalid API key"):
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
