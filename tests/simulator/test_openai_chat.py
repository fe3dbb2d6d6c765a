"""The simulator speaks the OpenAI Chat Completions API well enough for the official SDK:
completions, n choices, streams with usage, tools, stops, truncation, structured outputs."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam
from tests.simulator.conftest import openai_client

from tollhouse.server.runner import BackgroundServer
from tollhouse.tokens.estimate import request_input_tokens, text_tokens

MODEL = "gpt-4o-mini"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
CLOCK_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_create_returns_a_chat_completion(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(model="some-model", messages=ask("Hello"))
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "some-model"
    assert completion.system_fingerprint
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.message.refusal is None


def test_usage_follows_the_documented_token_estimate(gpt: openai.OpenAI) -> None:
    messages = ask("Count me")
    completion = gpt.chat.completions.create(model=MODEL, messages=messages)
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == request_input_tokens({"messages": messages})
    assert usage.completion_tokens == text_tokens(completion.choices[0].message.content or "")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_token_limit_truncates_with_finish_reason_length(gpt: openai.OpenAI, limit: str) -> None:
    completion = gpt.chat.completions.create(
        model=MODEL, messages=ask("Long"), extra_body={limit: 2}
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2


def test_stop_sequences_end_the_answer(serve_simulator: Any) -> None:
    server = serve_simulator(scripts=[{"pattern": ".", "reply": "alpha beta gamma"}])
    completion = openai_client(server).chat.completions.create(
        model=MODEL, messages=ask("go"), stop=["gamma", "beta"]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "alpha "


def test_n_choices_are_distinct_and_usage_sums_them(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(model=MODEL, messages=ask("Options"), n=3)
    texts = [c.message.content or "" for c in completion.choices]
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert completion.usage is not None
    assert completion.usage.completion_tokens == sum(text_tokens(t) for t in texts)


def test_stream_with_include_usage_ends_with_a_usage_chunk(gpt: openai.OpenAI) -> None:
    chunks = list(
        gpt.chat.completions.create(
            model=MODEL, messages=ask("Stream"), stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks[:-1])
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert last.usage.completion_tokens == text_tokens(text)


def test_stream_text_equals_the_completion_text(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(model=MODEL, messages=ask("Same?"))
    chunks = gpt.chat.completions.create(model=MODEL, messages=ask("Same?"), stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content


def test_stream_helper_and_async_client(simulator_server: BackgroundServer) -> None:
    async def run() -> str:
        client = openai.AsyncOpenAI(
            base_url=simulator_server.url + "/v1", api_key="x", max_retries=0
        )
        async with client.chat.completions.stream(model=MODEL, messages=ask("helper")) as stream:
            final = await stream.get_final_completion()
        assert final.choices[0].finish_reason == "stop"
        return final.choices[0].message.content or ""

    assert asyncio.run(run())


def test_required_tool_choice_answers_with_tool_calls(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(
        model=MODEL,
        messages=ask("Weather?"),
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)
    assert arguments["unit"] in ("c", "f")


def test_named_tool_choice_streams_argument_fragments(gpt: openai.OpenAI) -> None:
    with gpt.chat.completions.stream(
        model=MODEL,
        messages=ask("Weather?"),
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        fragments = [
            call.function.arguments
            for event in stream
            if event.type == "chunk" and event.chunk.choices
            for call in event.chunk.choices[0].delta.tool_calls or []
            if call.function and call.function.arguments
        ]
        final = stream.get_final_completion()
    assert len(fragments) > 1
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather"
    assert json.loads("".join(fragments)) == json.loads(call.function.arguments)
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_results_are_answered_with_text(gpt: openai.OpenAI) -> None:
    first = gpt.chat.completions.create(
        model=MODEL, messages=ask("Weather?"), tools=[WEATHER_TOOL], tool_choice="required"
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    second = gpt.chat.completions.create(
        model=MODEL,
        tools=[WEATHER_TOOL],
        messages=[
            *ask("Weather?"),
            cast(Any, first.choices[0].message.model_dump(exclude_none=True)),
            {"role": "tool", "tool_call_id": call.id, "content": "18C"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


def test_parse_with_a_pydantic_response_format(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.parse(
        model=MODEL, messages=ask("Who?"), response_format=Person
    )
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)


def test_models_list_in_openai_shape(gpt: openai.OpenAI) -> None:
    models = list(gpt.models.list())
    assert models
    assert all(m.object == "model" for m in models)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": MODEL}, "messages", "missing_required_parameter"),
        ({"model": MODEL, "messages": "hello"}, "messages", "invalid_type"),
        ({"model": MODEL, "messages": []}, "messages", "empty_array"),
        (
            {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        (
            {"model": MODEL, "messages": ask("x"), "max_tokens": 0},
            "max_tokens",
            "integer_below_min_value",
        ),
        ({"model": MODEL, "messages": ask("x"), "n": True}, "n", "invalid_type"),
        (
            {"model": MODEL, "messages": ask("x"), "stop": ["a", "b", "c", "d", "e"]},
            "stop",
            "array_above_max_length",
        ),
        (
            {"model": MODEL, "messages": ask("x"), "stream_options": {"include_usage": True}},
            "stream_options",
            None,
        ),
        ({"model": MODEL, "messages": ask("x"), "tool_choice": "required"}, "tool_choice", None),
        (
            {"model": MODEL, "messages": [{"role": "tool", "tool_call_id": "c", "content": "x"}]},
            "messages.[0].role",
            None,
        ),
    ],
)
def test_bad_requests_get_400_with_param_and_code(
    gpt: openai.OpenAI, body: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.post("/chat/completions", body=body, cast_to=object)
    error = caught.value.body
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
