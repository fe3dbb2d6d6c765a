"""Timeouts on every upstream call (first byte, idle gap, total deadline) and streams that
are retried only before their first content reaches the client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from tests.reliability.conftest import simulator
from tests.server.stream_upstream import SlowStreamUpstream
from tests.support import GATEWAY_KEY

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]


def route(*providers: dict[str, Any], **policy: Any) -> dict[str, Any]:
    names = [f"p{i}" for i in range(len(providers))]
    return {
        "providers": dict(zip(names, providers, strict=True)),
        "models": {"m": {"deployments": [{"provider": n, "model": n} for n in names], **policy}},
    }


def test_slow_first_byte_moves_to_the_fallback(make_gateway: Make) -> None:
    url = make_gateway(
        route(
            simulator("anthropic", {"fault": "slow-first-byte:3000"}),
            simulator("anthropic"),
            timeouts={"first_byte": 0.2},
            retry={"max_attempts": 1},
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    started = time.monotonic()
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0
    assert raw.headers["x-tollhouse-served-by"] == "p1/p1"


def test_client_deadline_header_bounds_the_whole_call(make_gateway: Make) -> None:
    url = make_gateway(route(simulator("anthropic", {"fault": "hang"})))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    started = time.monotonic()
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(
            model="m",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-tollhouse-timeout": "0.8"},
        )
    assert time.monotonic() - started < 1.2


def test_an_idle_gap_in_a_stream_ends_it_with_an_error_event(make_gateway: Make) -> None:
    upstream = SlowStreamUpstream(events=20, interval=1.0)  # one delta, then a long silence
    with BackgroundServer(upstream) as server:
        url = make_gateway(
            route({"type": "anthropic", "base_url": server.url}, timeouts={"read_idle": 0.2})
        )
        client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
        seen: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError, match="went silent"),
            client.messages.stream(model="m", max_tokens=300, messages=HI) as stream,  # type: ignore[arg-type]
        ):
            seen.extend(stream.text_stream)
    assert seen == ["tick "]


def test_a_failure_before_the_first_content_is_retried_unseen(make_gateway: Make) -> None:
    url = make_gateway(route(simulator("openai", {"fault": "mid-stream-reset:1", "first_n": 1})))
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    response = client.chat.completions.with_raw_response.create(
        model="m",
        messages=HI,
        stream=True,  # type: ignore[arg-type]
    )
    chunks = list(response.parse())
    assert response.headers["x-tollhouse-attempts"] == "2"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_a_failure_after_content_started_is_an_error_event_not_a_retry(make_gateway: Make) -> None:
    url = make_gateway(route(simulator("anthropic", {"fault": "mid-stream-error:6", "first_n": 1})))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="m", max_tokens=300, messages=HI) as stream,  # type: ignore[arg-type]
    ):
        seen.extend(text for text in stream.text_stream)
    assert seen  # content had reached the client before the failure
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
