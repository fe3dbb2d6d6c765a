"""POST /v1/chat/completions through the official OpenAI SDK, as an application would call it."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

MODEL = "gpt-4o-mini"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_create_returns_a_completion(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=200
    )
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_async_create_returns_completions(async_openai_client: openai.AsyncOpenAI) -> None:
    async def run() -> list[str]:
        calls = [
            async_openai_client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"hi {i}"}]
            )
            for i in range(5)
        ]
        return [c.id for c in await asyncio.gather(*calls)]

    assert len(set(asyncio.run(run()))) == 5


def test_length_finish_reason_on_truncation(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "A long story"}], max_completion_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2


def test_stream_ends_with_a_usage_chunk_when_asked(openai_client: openai.OpenAI) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Stream"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_stream_without_usage_option_has_no_usage_chunk(openai_client: openai.OpenAI) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Stream"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_stream_helper_accumulates_the_completion(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "helper"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"


def test_tool_calls_and_tool_results_round_trip(openai_client: openai.OpenAI) -> None:
    question = {"role": "user", "content": "Weather in Oslo?"}
    first = openai_client.chat.completions.create(
        model=MODEL, messages=[question], tools=[WEATHER_TOOL], tool_choice="required"
    )
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls
    assert calls
    call = calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    second = openai_client.chat.completions.create(
        model=MODEL,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "-3C"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


def test_streamed_tool_call_arguments_assemble(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls
    assert "city" in json.loads(calls[0].function.arguments)


def test_async_stream_yields_chunks(async_openai_client: openai.AsyncOpenAI) -> None:
    async def run() -> str:
        stream = await async_openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "async"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run())


def test_request_id_is_the_gateway_one(openai_client: openai.OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "ids"}]
    )
    assert raw.headers["x-request-id"].startswith("th_")
    assert raw.headers["x-upstream-request-id"]
    assert raw.request_id == raw.headers["x-request-id"]


def test_models_list_in_openai_shape(openai_client: openai.OpenAI) -> None:
    models = list(openai_client.models.list())
    assert {"claude-haiku-4-5", "gpt-4o-mini"} <= {m.id for m in models}
    assert all(m.object == "model" for m in models)


def test_models_retrieve_in_openai_shape(openai_client: openai.OpenAI) -> None:
    model = openai_client.models.retrieve("gpt-4o-mini")
    assert model.id == "gpt-4o-mini"
    assert model.owned_by == "sim-openai"
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("gpt-unknown")
