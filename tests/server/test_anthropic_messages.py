"""POST /v1/messages through the official Anthropic SDK, as an application would call it."""

from __future__ import annotations

import asyncio
import base64

import anthropic
import httpx
import openai
import orjson
import pytest
from tests.server.upstream_recorder import RecordingUpstream
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.server.runner import BackgroundServer

MODEL = "claude-haiku-4-5"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082"
    )
).decode()


def test_create_returns_a_complete_message(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-haiku-4-5-20251001"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


def test_async_create_returns_a_message(async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    async def run() -> list[anthropic.types.Message]:
        calls = [
            async_anthropic_client.messages.create(
                model=MODEL, max_tokens=100, messages=[{"role": "user", "content": f"hi {i}"}]
            )
            for i in range(5)
        ]
        return list(await asyncio.gather(*calls))

    messages = asyncio.run(run())
    assert len({m.id for m in messages}) == 5
    assert all(m.content[0].type == "text" for m in messages)


def test_max_tokens_truncation_reports_max_tokens(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Tell me a long story"}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_stream_helper_assembles_the_final_message(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Stream please"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 1


def test_raw_stream_sends_the_full_event_sequence(anthropic_client: anthropic.Anthropic) -> None:
    events = list(
        anthropic_client.messages.create(
            model=MODEL, max_tokens=200, stream=True, messages=[{"role": "user", "content": "Hi"}]
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert "content_block_delta" in kinds
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0


def test_async_stream_yields_text(async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    async def run() -> str:
        async with async_anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "async stream"}]
        ) as stream:
            chunks = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        assert final.content[0].type == "text"
        assert final.content[0].text == "".join(chunks)
        return "".join(chunks)

    assert asyncio.run(run())


def test_tool_use_and_tool_result_round_trip(anthropic_client: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "Weather in Paris?"}
    first = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
        messages=[question],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather"
    assert set(call.input) >= {"city", "unit"}  # type: ignore[arg-type]
    second = anthropic_client.messages.create(
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


def test_streamed_tool_use_assembles_its_input(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather?"}],
    ) as stream:
        final = stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert isinstance(call.input, dict)
    assert "city" in call.input
    assert final.stop_reason == "tool_use"


def test_thinking_is_streamed_before_the_answer(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model=MODEL,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think first"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content][:2] == ["thinking", "text"]
    thinking = final.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking
    assert thinking.signature


def test_system_blocks_images_and_metadata_are_accepted(
    anthropic_client: anthropic.Anthropic,
) -> None:
    message = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=100,
        system=[{"type": "text", "text": "You are terse."}],
        metadata={"user_id": "user-42"},
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG},
                    },
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )
    assert message.usage.input_tokens >= 1600  # the documented flat cost of an image


def test_prompt_cache_is_written_then_read(anthropic_client: anthropic.Anthropic) -> None:
    system = [
        {
            "type": "text",
            # About 4,500 tokens: over Haiku 4.5's minimum cacheable prefix (4,096).
            "text": "Reference manual. " * 1000 + "unique-marker-cache-test",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    ask = {"role": "user", "content": "Summarise"}
    first = anthropic_client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=[ask]
    )
    second = anthropic_client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=[ask]
    )
    assert first.usage.cache_creation_input_tokens
    assert first.usage.cache_creation_input_tokens > 1000
    assert not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert not second.usage.cache_creation_input_tokens


def test_count_tokens_answers_an_estimate(anthropic_client: anthropic.Anthropic) -> None:
    short = anthropic_client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}]
    )
    long = anthropic_client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hi " * 500}]
    )
    assert 0 < short.input_tokens < long.input_tokens


def test_every_response_carries_gateway_and_upstream_request_ids(
    anthropic_client: anthropic.Anthropic,
) -> None:
    raw = anthropic_client.messages.with_raw_response.create(
        model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "ids"}]
    )
    assert raw.headers["request-id"].startswith("th_")
    assert raw.headers["x-tollhouse-request-id"] == raw.headers["request-id"]
    assert raw.headers["x-upstream-request-id"].startswith("req_")
    assert raw.request_id == raw.headers["request-id"]


def test_models_list_names_the_configured_models(anthropic_client: anthropic.Anthropic) -> None:
    ids = [m.id for m in anthropic_client.models.list()]
    assert {"claude-haiku-4-5", "gpt-4o-mini"} <= set(ids)


def test_unknown_fields_and_beta_headers_reach_the_upstream_untouched() -> None:

    recorder = RecordingUpstream()
    with BackgroundServer(recorder) as upstream:
        gateway = serve_gateway(
            {
                "providers": {"up": {"type": "anthropic", "base_url": upstream.url}},
                "models": {"claude-x": {"deployments": [{"provider": "up", "model": "claude-x"}]}},
            }
        )
        try:
            client = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
            message = client.messages.create(
                model="claude-x",
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"brand_new_feature": {"level": 3}, "context_management": [1, 2]},
                extra_headers={
                    "anthropic-beta": "brand-new-2026-11-01",
                    "anthropic-version": "2099-01-01",
                },
            )
        finally:
            gateway.stop()
    assert message.content[0].type == "text"
    path, headers, body = recorder.requests[0]
    sent = orjson.loads(body)
    assert path == "/v1/messages"
    assert sent["brand_new_feature"] == {"level": 3}
    assert sent["context_management"] == [1, 2]
    assert headers["anthropic-beta"] == "brand-new-2026-11-01"
    assert headers["anthropic-version"] == "2099-01-01"
    assert GATEWAY_KEY not in headers.values()


CLIENT_ONLY = {
    "x-simulator-fault": "500",
    "x-simulator-ttft-ms": "1",
    "x-tollhouse-timeout": "30",
    "x-tollhouse-debug": "1",
}


@pytest.mark.parametrize("simulator_headers", [False, True])
def test_client_only_headers_never_reach_a_real_provider(simulator_headers: bool) -> None:
    recorder = RecordingUpstream()
    with BackgroundServer(recorder) as upstream:
        provider: dict[str, object] = {"type": "anthropic", "base_url": upstream.url}
        if simulator_headers:  # an HTTP `tollhouse simulate` server that opted in to them
            provider["simulator_headers"] = True
        gateway = serve_gateway(
            {
                "providers": {"up": provider},
                "models": {"claude-x": {"deployments": [{"provider": "up", "model": "claude-x"}]}},
            }
        )
        try:
            hi = [{"role": "user", "content": "hi"}]
            claude = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
            claude.messages.create(
                model="claude-x", max_tokens=10, messages=hi, extra_headers=CLIENT_ONLY
            )
            gpt = openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
            gpt.chat.completions.create(model="claude-x", messages=hi, extra_headers=CLIENT_ONLY)  # type: ignore[arg-type]
            httpx.post(
                gateway.url + "/v1/messages",
                json={"model": "claude-x", "max_tokens": 10, "stream": True, "messages": hi},
                headers={"x-api-key": GATEWAY_KEY, **CLIENT_ONLY},
            )
        finally:
            gateway.stop()
    assert len(recorder.requests) == 3
    for _, headers, _ in recorder.requests:
        assert not [name for name in headers if name.startswith("x-tollhouse-")]
        simulator = {k: v for k, v in headers.items() if k.startswith("x-simulator-")}
        if simulator_headers:
            assert simulator == {"x-simulator-fault": "500", "x-simulator-ttft-ms": "1"}
        else:
            assert simulator == {}


def test_model_is_rewritten_to_the_upstream_id_and_nothing_else_changes() -> None:

    recorder = RecordingUpstream()
    with BackgroundServer(recorder) as upstream:
        gateway = serve_gateway(
            {
                "providers": {"up": {"type": "anthropic", "base_url": upstream.url}},
                "models": {
                    "fast": {"deployments": [{"provider": "up", "model": "claude-haiku-4-5"}]}
                },
            }
        )
        try:
            body = {
                "model": "fast",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "x_custom": True,
            }
            response = httpx.post(
                gateway.url + "/v1/messages",
                json=body,
                headers={"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"},
            )
        finally:
            gateway.stop()
    assert response.status_code == 200
    sent = orjson.loads(recorder.requests[0][2])
    assert sent == {**body, "model": "claude-haiku-4-5"}


def test_models_retrieve_describes_one_model(anthropic_client: anthropic.Anthropic) -> None:
    model = anthropic_client.models.retrieve("claude-haiku-4-5")
    assert model.id == "claude-haiku-4-5"
    assert model.display_name == "Claude Haiku 4.5"
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.models.retrieve("claude-unknown")
