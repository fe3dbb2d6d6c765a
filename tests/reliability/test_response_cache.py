"""Exact-match response caching per route, and stale answers for graceful degradation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "What is the capital of France?"}]
Make = Callable[[dict[str, Any]], str]


def cached_route(*faults: dict[str, Any], **policy: Any) -> dict[str, Any]:
    return {
        "providers": {"up": simulator("anthropic", *faults)},
        "models": {
            "m": {
                "deployments": [{"provider": "up", "model": "up"}],
                "cache": {"ttl_seconds": 60, "stale_seconds": 3600},
                **policy,
            }
        },
    }


def test_a_repeated_request_is_answered_from_the_cache(make_gateway: Make) -> None:
    url = make_gateway(cached_route())
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    first = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    second = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert first.headers["x-tollhouse-cache"] == "miss"
    assert second.headers["x-tollhouse-cache"] == "hit"
    assert second.parse().content == first.parse().content


def test_a_cached_answer_is_replayed_to_a_streaming_client(make_gateway: Make) -> None:
    url = make_gateway(cached_route())
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    whole = client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    with client.messages.stream(model="m", max_tokens=300, messages=HI) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert stream.response.headers["x-tollhouse-cache"] == "hit"
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [
        b.model_dump() for b in whole.content
    ]
    assert final.stop_reason == whole.stop_reason


def test_cached_tool_calls_replay_as_an_openai_stream(make_gateway: Make) -> None:
    url = make_gateway(
        {
            "providers": {"up": simulator("openai")},
            "models": {
                "m": {
                    "deployments": [{"provider": "up", "model": "up"}],
                    "cache": {"ttl_seconds": 60},
                }
            },
        }
    )
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        },
    }
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    whole = client.chat.completions.create(
        model="m", messages=HI, tools=[tool], tool_choice="required"
    )  # type: ignore[arg-type, list-item]
    with client.chat.completions.stream(
        model="m", messages=HI, tools=[tool], tool_choice="required"
    ) as s:  # type: ignore[arg-type, list-item]
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    expected = whole.choices[0].message.tool_calls
    assert calls is not None
    assert expected is not None
    assert calls[0].function.arguments == expected[0].function.arguments
    assert final.choices[0].finish_reason == "tool_calls"


def test_different_client_keys_never_share_answers(make_gateway: Make) -> None:
    url = make_gateway(cached_route())
    alice = anthropic.Anthropic(base_url=url, api_key="key-alice", max_retries=0)
    bob = anthropic.Anthropic(base_url=url, api_key="key-bob", max_retries=0)
    alice.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    raw = bob.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-tollhouse-cache"] == "miss"


def test_truncated_answers_are_not_cached(make_gateway: Make) -> None:
    url = make_gateway(cached_route())
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    client.messages.create(model="m", max_tokens=2, messages=HI)  # type: ignore[arg-type]
    raw = client.messages.with_raw_response.create(model="m", max_tokens=2, messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-tollhouse-cache"] == "miss"


def test_stale_mode_without_a_cached_answer_falls_back_to_the_error(make_gateway: Make) -> None:
    url = make_gateway(
        cached_route(
            {"fault": "500", "probability": 1.0},
            degrade={"mode": "stale_cache"},
            cache={"ttl_seconds": 0.2, "stale_seconds": 3600},
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    # Nothing was ever cached for this request, so the route answers with its error.
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]


def test_stale_answer_after_the_upstream_went_down(make_gateway: Make) -> None:
    url = make_gateway(
        cached_route(
            degrade={"mode": "stale_cache"},
            cache={"ttl_seconds": 0.2, "stale_seconds": 3600},
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    fresh = client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    time.sleep(0.3)  # past the TTL: no longer served as a hit
    raw = client.messages.with_raw_response.create(
        model="m",
        max_tokens=300,
        messages=HI,  # type: ignore[arg-type]
        extra_headers={"x-simulator-fault": "529"},
    )
    assert raw.headers["x-tollhouse-cache"] == "stale"
    assert raw.headers["x-tollhouse-degraded"] == "true"
    assert raw.parse().content == fresh.content
