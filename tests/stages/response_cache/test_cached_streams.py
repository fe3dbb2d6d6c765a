"""Streamed answers are stored as they are relayed, and replayed as real streams equal to
the original (text, stop reason, the usage the SDK reads), to streaming and non-streaming
clients alike; an answer larger than `max_entry_bytes` is not stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.stages.response_cache.cached_gateway import HI, cached_config
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.server.runner import BackgroundServer

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[BackgroundServer] = []

    def start(**config: Any) -> str:
        server = serve_gateway(cached_config(**config))
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def claude(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)


def gpt(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


def blocks(content: list[Any]) -> list[dict[str, Any]]:
    """Content blocks as plain data (a stream's final message has parsed blocks)."""
    return [block.model_dump(exclude={"parsed_output"}) for block in content]


def anthropic_stream(url: str, model: str = "claude-haiku-4-5") -> tuple[str, Any]:
    with claude(url).messages.stream(model=model, max_tokens=300, messages=HI) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    return stream.response.headers["x-tollhouse-cache"], final


def test_an_anthropic_stream_is_stored_then_replayed_equal(serve: Serve) -> None:
    url = serve()
    first, original = anthropic_stream(url)
    second, replayed = anthropic_stream(url)
    assert (first, second) == ("miss", "hit")
    assert blocks(replayed.content) == blocks(original.content)
    assert replayed.stop_reason == original.stop_reason == "end_turn"
    assert replayed.usage.input_tokens == original.usage.input_tokens > 0
    assert replayed.usage.output_tokens == original.usage.output_tokens > 0
    whole = claude(url).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        messages=HI,  # type: ignore[arg-type]
    )
    assert whole.headers["x-tollhouse-cache"] == "hit"
    assert blocks(whole.parse().content) == blocks(original.content)
    assert whole.parse().usage == original.usage


def openai_stream(url: str, model: str, include_usage: bool) -> tuple[str, str, Any, str | None]:
    with gpt(url).chat.completions.with_streaming_response.create(
        model=model,
        messages=HI,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True} if include_usage else openai.NOT_GIVEN,
    ) as response:
        header = response.headers["x-tollhouse-cache"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage is not None]
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    return header, text, usage, finish[-1] if finish else None


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5"])
def test_an_openai_stream_is_stored_then_replayed_equal(serve: Serve, model: str) -> None:
    """Same format, and an OpenAI client of an Anthropic upstream (the stream translated)."""
    url = serve()
    first = openai_stream(url, model, include_usage=True)
    second = openai_stream(url, model, include_usage=True)
    assert (first[0], second[0]) == ("miss", "hit")
    assert second[1:] == first[1:]
    assert first[1]
    assert len(first[2]) == 1
    assert first[2][0].completion_tokens > 0
    whole = gpt(url).chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == first[1]
    assert whole.usage == first[2][0]


def test_a_stream_without_usage_asked_is_stored_with_its_usage(serve: Serve) -> None:
    url = serve()
    header, text, usage, _ = openai_stream(url, "gpt-4o-mini", include_usage=False)
    assert (header, usage) == ("miss", [])
    raw = gpt(url).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    whole = raw.parse()
    assert raw.headers["x-tollhouse-cache"] == "hit"
    assert whole.choices[0].message.content == text
    assert whole.usage is not None
    assert whole.usage.completion_tokens > 0
    # Replayed to a stream that asks for usage, it is told the same usage.
    replay = openai_stream(url, "gpt-4o-mini", include_usage=True)
    assert replay[0] == "hit"
    assert replay[1] == text
    assert replay[2] == [whole.usage]


def test_a_responses_stream_is_stored_then_replayed(serve: Serve) -> None:
    url = serve()
    client = gpt(url)
    with client.responses.stream(model="gpt-4o-mini", input="What is the capital of France?") as s:
        original = s.get_final_response()
    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini", input="What is the capital of France?"
    )
    assert raw.headers["x-tollhouse-cache"] == "hit"
    assert raw.parse().output_text == original.output_text != ""
    assert raw.parse().usage == original.usage


def test_an_answer_larger_than_max_entry_bytes_is_not_stored(serve: Serve) -> None:
    url = serve(max_entry_bytes=64)
    assert anthropic_stream(url)[0] == "miss"
    assert anthropic_stream(url)[0] == "miss"
    raw = claude(url).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        messages=HI,  # type: ignore[arg-type]
    )
    assert raw.headers["x-tollhouse-cache"] == "miss"
    assert metric(url, "tollhouse_response_cache_stores_total", result="too_large") == 3
    assert metric(url, "tollhouse_response_cache_stores_total", result="stored") == 0


def test_a_stream_that_broke_is_not_stored(serve: Serve) -> None:
    url = serve()
    client = claude(url)
    with (
        client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "mid-stream-error:8"},
        ) as stream,
        pytest.raises(anthropic.APIError),
    ):
        stream.until_done()
    assert anthropic_stream(url)[0] == "miss"
