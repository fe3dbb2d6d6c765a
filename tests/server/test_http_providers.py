"""The real HTTP provider adapters (anthropic, openai, openai-compatible) against the
simulator served as its own server: pooling, streaming, errors and resets over a socket."""

from __future__ import annotations

import anthropic
import openai
import pytest
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def http_anthropic(http_gateway_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=http_gateway_url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.fixture
def http_openai(http_gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=http_gateway_url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


def test_anthropic_provider_over_http(http_anthropic: anthropic.Anthropic) -> None:
    message = http_anthropic.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert message.content[0].type == "text"
    with http_anthropic.messages.stream(model="claude-haiku-4-5", max_tokens=300, messages=HI) as s:  # type: ignore[arg-type]
        assert s.get_final_message().stop_reason == "end_turn"


def test_openai_provider_over_http(http_openai: openai.OpenAI) -> None:
    completion = http_openai.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    chunks = list(
        http_openai.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    assert chunks[-1].usage is not None


def test_openai_compatible_provider_serves_a_local_model(http_openai: openai.OpenAI) -> None:
    completion = http_openai.chat.completions.create(model="llama-3.1-8b", messages=HI)  # type: ignore[arg-type]
    assert completion.model == "meta-llama/Llama-3.1-8B"
    assert completion.choices[0].message.content


def test_cross_format_over_http_both_ways(
    http_anthropic: anthropic.Anthropic, http_openai: openai.OpenAI
) -> None:
    message = http_anthropic.messages.create(model="llama-3.1-8b", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert message.content[0].type == "text"
    with http_anthropic.messages.stream(model="gpt-4o-mini", max_tokens=300, messages=HI) as s:  # type: ignore[arg-type]
        assert s.get_final_message().content[0].type == "text"
    chunks = list(
        http_openai.chat.completions.create(model="claude-haiku-4-5", messages=HI, stream=True)  # type: ignore[arg-type]
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_upstream_errors_over_http_keep_their_class(http_anthropic: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError):
        http_anthropic.messages.create(
            model="claude-haiku-4-5",
            max_tokens=5,
            messages=HI,
            extra_headers={"x-simulator-fault": "529"},  # type: ignore[arg-type]
        )
    with pytest.raises(anthropic.RateLimitError) as caught:
        http_anthropic.messages.create(
            model="claude-haiku-4-5",
            max_tokens=5,
            messages=HI,
            extra_headers={"x-simulator-fault": "429"},  # type: ignore[arg-type]
        )
    assert caught.value.response.headers.get("retry-after")


def test_connection_reset_over_http_ends_in_503_for_openai_clients(
    http_openai: openai.OpenAI,
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        http_openai.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,
            extra_headers={"x-simulator-fault": "reset"},  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after"]


def test_mid_stream_reset_over_http_is_an_error_event(http_anthropic: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        http_anthropic.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=200,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "mid-stream-reset"},
        ) as stream,
    ):
        for _ in stream:
            pass
    assert "incomplete" in caught.value.message


def test_unreachable_upstream_is_a_clean_overload_error_not_a_hang() -> None:
    from tests.support import serve_gateway

    from tollhouse.server.runner import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    gateway = serve_gateway(
        {
            "providers": {"dead": {"type": "anthropic", "base_url": dead}},
            "models": {"gone": {"deployments": [{"provider": "dead", "model": "gone"}]}},
        }
    )
    try:
        client = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
        with pytest.raises(anthropic.OverloadedError) as caught:
            client.messages.create(model="gone", max_tokens=5, messages=HI)  # type: ignore[arg-type]
        assert "cannot connect to 127.0.0.1" in caught.value.message
    finally:
        gateway.stop()
