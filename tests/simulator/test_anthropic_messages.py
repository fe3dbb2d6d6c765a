"""The simulator speaks the Anthropic Messages API well enough for the official SDK: plain
and streamed answers, tools, thinking, stop sequences, truncation, counting and listing."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import anthropic
import pytest
from anthropic.types import MessageParam, ToolParam
from tests.simulator.conftest import anthropic_client, error_of

from tollhouse.server.runner import BackgroundServer
from tollhouse.tokens.estimate import request_input_tokens, text_tokens

MODEL = "claude-haiku-4-5"
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"enum": ["c", "f"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
    },
}
CLOCK_TOOL: ToolParam = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
}


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_create_returns_a_message_that_echoes_the_model(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="any-model-name", max_tokens=500, messages=ask("Hi"))
    assert message.id.startswith("msg_")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "any-model-name"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.content[0].type == "text"
    assert message.content[0].text


def test_usage_follows_the_documented_token_estimate(claude: anthropic.Anthropic) -> None:
    messages = ask("How are tokens counted?")
    message = claude.messages.create(model=MODEL, max_tokens=500, messages=messages)
    assert message.content[0].type == "text"
    assert message.usage.output_tokens == text_tokens(message.content[0].text)
    body = {"model": MODEL, "max_tokens": 500, "messages": messages}
    assert message.usage.input_tokens == request_input_tokens(body)
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.service_tier == "standard"


def test_max_tokens_truncates_the_answer_exactly(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=3, messages=ask("A long story"))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3
    assert message.content[0].type == "text"
    assert text_tokens(message.content[0].text) == 3


def test_stop_sequence_ends_the_answer_before_it(serve_simulator: Any) -> None:
    server = serve_simulator(scripts=[{"pattern": "count", "reply": "one two three four"}])
    message = anthropic_client(server).messages.create(
        model=MODEL, max_tokens=100, stop_sequences=["three", "zzz"], messages=ask("count")
    )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "three"
    assert message.content[0].type == "text"
    assert message.content[0].text == "one two "


def test_stream_helper_assembles_the_same_message_as_create(claude: anthropic.Anthropic) -> None:
    messages = ask("Same either way?")
    created = claude.messages.create(model=MODEL, max_tokens=500, messages=messages)
    with claude.messages.stream(model=MODEL, max_tokens=500, messages=messages) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert created.content[0].type == final.content[0].type == "text"
    assert final.content[0].text == streamed_text == created.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == created.usage.output_tokens
    assert final.usage.input_tokens == created.usage.input_tokens


def test_raw_stream_has_the_full_event_sequence(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(model=MODEL, max_tokens=500, stream=True, messages=ask("Events"))
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") > 1
    start, delta = events[0], events[-2]
    assert start.type == "message_start"
    assert delta.type == "message_delta"
    assert start.message.usage.output_tokens == 1
    assert start.message.usage.input_tokens > 0
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 1
    assert delta.usage.input_tokens == start.message.usage.input_tokens


def test_stream_carries_a_ping_and_sse_headers(claude: anthropic.Anthropic) -> None:
    with claude.messages.with_streaming_response.create(
        model=MODEL, max_tokens=50, stream=True, messages=ask("ping?")
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join(response.iter_bytes())
    assert b'event: ping\ndata: {"type":"ping"}\n\n' in body


def test_async_client_streams_and_creates(simulator_server: BackgroundServer) -> None:
    async def run() -> tuple[str, str]:
        client = anthropic.AsyncAnthropic(base_url=simulator_server.url, api_key="x", max_retries=0)
        messages = ask("async")
        created = await client.messages.create(model=MODEL, max_tokens=500, messages=messages)
        async with client.messages.stream(model=MODEL, max_tokens=500, messages=messages) as s:
            final = await s.get_final_message()
        assert created.content[0].type == final.content[0].type == "text"
        return created.content[0].text, final.content[0].text

    created, streamed = asyncio.run(run())
    assert created == streamed


def test_tool_choice_any_answers_with_a_tool_use_fitting_the_schema(
    claude: anthropic.Anthropic,
) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "any"},
        messages=ask("Weather in Paris?"),
    )
    assert message.stop_reason == "tool_use"
    call = message.content[-1]
    assert call.type == "tool_use"
    assert call.id.startswith("toolu_")
    assert call.name == "get_weather"
    tool_input = cast(dict[str, Any], call.input)
    assert isinstance(tool_input["city"], str)
    assert tool_input["unit"] in ("c", "f")
    assert 1 <= tool_input["days"] <= 7


def test_named_tool_choice_streams_its_input_as_json_pieces(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "tool", "name": "get_time"},
        messages=ask("What time is it?"),
    ) as stream:
        json_deltas = [
            e
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert len(json_deltas) > 1
    call = final.content[-1]
    assert call.type == "tool_use"
    assert call.name == "get_time"
    assert set(call.input) == {"zone"}
    assert final.stop_reason == "tool_use"


def test_a_tool_result_is_answered_with_text(claude: anthropic.Anthropic) -> None:
    question: MessageParam = {"role": "user", "content": "Weather in Paris?"}
    first = claude.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
        messages=[question],
    )
    call = first.content[-1]
    assert call.type == "tool_use"
    second = claude.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


def test_thinking_comes_first_with_a_signature(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=ask("Think first"),
    ) as stream:
        kinds = {e.delta.type for e in stream if e.type == "content_block_delta"}
        final = stream.get_final_message()
    assert {"thinking_delta", "signature_delta", "text_delta"} <= kinds
    thinking, text = final.content
    assert thinking.type == "thinking"
    assert text.type == "text"
    assert thinking.thinking
    assert thinking.signature
    assert final.usage.output_tokens == text_tokens(thinking.thinking) + text_tokens(text.text)


def test_count_tokens_answers_the_estimate(claude: anthropic.Anthropic) -> None:
    messages = ask("Hi " * 100)
    counted = claude.messages.count_tokens(model=MODEL, system="Be brief.", messages=messages)
    expected = request_input_tokens({"system": "Be brief.", "messages": messages})
    assert counted.input_tokens == expected


def test_models_list_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    models = list(claude.models.list())
    assert models
    assert all(m.type == "model" and m.id.startswith("claude") for m in models)


def test_structured_output_is_json_fitting_the_schema(claude: anthropic.Anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    message = claude.messages.create(
        model=MODEL,
        max_tokens=300,
        output_config={"format": {"type": "json_schema", "schema": schema}},
        messages=ask("Who?"),
    )
    assert message.content[0].type == "text"
    value = json.loads(message.content[0].text)
    assert isinstance(value["name"], str)
    assert isinstance(value["age"], int)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": MODEL, "messages": ask("x")}, "max_tokens: Field required"),
        ({"max_tokens": 5, "messages": ask("x")}, "model: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
        ({"model": MODEL, "max_tokens": "5", "messages": ask("x")}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "at least one message"),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]},
            "role",
        ),
        ({"model": MODEL, "max_tokens": 5, "messages": ask("")}, "non-empty content"),
        ({"model": MODEL, "max_tokens": 5, "stream": "yes", "messages": ask("x")}, "stream"),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "messages.0.content.0.text",
        ),
        (
            {"model": MODEL, "max_tokens": 5, "tool_choice": {"type": "any"}, "messages": ask("x")},
            "tool_choice",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 2000,
                "thinking": {"type": "enabled", "budget_tokens": 100},
                "messages": ask("x"),
            },
            "budget_tokens",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
                        ],
                    },
                    {"role": "user", "content": "no result"},
                ],
            },
            "without `tool_result`",
        ),
    ],
)
def test_bad_requests_get_400_invalid_request_error(
    claude: anthropic.Anthropic, body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]
    assert error["request_id"].startswith("req_")


def test_unknown_path_is_404_not_found_error(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.get("/v1/nothing", cast_to=object)
    assert error_of(caught.value.body)["type"] == "not_found_error"
