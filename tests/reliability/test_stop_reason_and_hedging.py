"""stop_reason discipline (truncation never silent) and hedged requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from tests.reliability.conftest import simulator
from tests.server.upstream_recorder import CANNED_MESSAGE, RecordingUpstream
from tests.support import GATEWAY_KEY

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]


def one_route(provider: dict[str, Any], **policy: Any) -> dict[str, Any]:
    return {
        "providers": {"up": provider},
        "models": {"m": {"deployments": [{"provider": "up", "model": "up"}], **policy}},
    }


def test_truncation_is_flagged_in_headers(make_gateway: Make) -> None:
    url = make_gateway(one_route(simulator("openai")))
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=HI, max_tokens=3)  # type: ignore[arg-type]
    assert raw.parse().choices[0].finish_reason == "length"
    assert raw.headers["x-tollhouse-truncated"] == "true"
    assert raw.headers["x-tollhouse-stop-reason"] == "max_tokens"


def test_a_complete_answer_is_not_flagged(make_gateway: Make) -> None:
    url = make_gateway(one_route(simulator("anthropic")))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-tollhouse-stop-reason"] == "end_turn"
    assert "x-tollhouse-truncated" not in raw.headers


def test_retry_larger_completes_a_truncated_answer(make_gateway: Make) -> None:
    url = make_gateway(
        one_route(
            simulator("anthropic"), truncation={"mode": "retry_larger", "max_tokens_cap": 2000}
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=3, messages=HI)  # type: ignore[arg-type]
    assert raw.parse().stop_reason == "end_turn"
    assert raw.headers["x-tollhouse-attempts"] == "2"


def test_retry_larger_does_not_use_up_the_retry_budget(make_gateway: Make) -> None:
    url = make_gateway(
        one_route(
            simulator("anthropic"),
            retry={"max_attempts": 1},
            truncation={"mode": "retry_larger", "max_tokens_cap": 2000},
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=3, messages=HI)  # type: ignore[arg-type]
    assert raw.parse().stop_reason == "end_turn"
    assert raw.headers["x-tollhouse-attempts"] == "2"


def test_refuse_mode_never_passes_a_truncated_answer(make_gateway: Make) -> None:
    url = make_gateway(one_route(simulator("anthropic"), truncation={"mode": "refuse"}))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY)
    with pytest.raises(anthropic.UnprocessableEntityError, match="max_tokens") as caught:
        client.messages.create(model="m", max_tokens=3, messages=HI)  # type: ignore[arg-type]
    assert caught.value.response.request.headers["x-stainless-retry-count"] == "0"


@pytest.mark.parametrize(
    ("upstream", "client"),
    [
        ("anthropic", "anthropic"),
        ("openai", "openai"),
        ("anthropic", "openai"),
        ("openai", "anthropic"),
    ],
)
def test_refuse_mode_ends_a_truncated_stream_with_an_error_event(
    make_gateway: Make, upstream: str, client: str
) -> None:
    url = make_gateway(one_route(simulator(upstream), truncation={"mode": "refuse"}))
    if client == "anthropic":
        claude = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
        with (
            pytest.raises(anthropic.APIStatusError, match="cut at its length limit"),
            claude.messages.stream(model="m", max_tokens=3, messages=HI) as stream,  # type: ignore[arg-type]
        ):
            for _ in stream:
                pass
    else:
        gpt = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        with pytest.raises(openai.APIError, match="cut at its length limit"):
            for _ in gpt.chat.completions.create(
                model="m",
                messages=HI,  # type: ignore[arg-type]
                max_tokens=3,
                stream=True,
                stream_options={"include_usage": True},
            ):
                pass


def test_refuse_mode_passes_a_complete_stream_untouched(make_gateway: Make) -> None:
    url = make_gateway(one_route(simulator("openai"), truncation={"mode": "refuse"}))
    gpt = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    chunks = list(
        gpt.chat.completions.create(model="m", messages=HI, max_tokens=300, stream=True)  # type: ignore[arg-type]
    )
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_retry_larger_flags_a_truncated_stream_it_cannot_retry(make_gateway: Make) -> None:
    url = make_gateway(
        one_route(
            simulator("anthropic"), truncation={"mode": "retry_larger", "max_tokens_cap": 2000}
        )
    )
    claude = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    with claude.messages.stream(model="m", max_tokens=3, messages=HI) as stream:  # type: ignore[arg-type]
        message = stream.get_final_message()
    assert message.stop_reason == "max_tokens"


@pytest.mark.parametrize("reason", ["refusal", "pause_turn"])
def test_refusal_and_pause_turn_are_flagged(make_gateway: Make, reason: str) -> None:
    upstream = RecordingUpstream(doc={**CANNED_MESSAGE, "stop_reason": reason})
    with BackgroundServer(upstream) as server:
        url = make_gateway(one_route({"type": "anthropic", "base_url": server.url}))
        client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
        raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-tollhouse-flagged"] == reason
    assert raw.parse().stop_reason == reason


def test_hedged_request_takes_the_faster_deployment(make_gateway: Make) -> None:
    url = make_gateway(
        {
            "providers": {
                "slow": simulator("anthropic", {"fault": "slow-first-byte:2000"}),
                "fast": simulator("anthropic"),
            },
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "slow", "model": "slow"},
                        {"provider": "fast", "model": "fast"},
                    ],
                    "hedge_after_ms": 100,
                }
            },
        }
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    started = time.monotonic()
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0
    assert raw.headers["x-tollhouse-served-by"] == "fast/fast"
    assert raw.headers["x-tollhouse-attempts"] == "2"


def test_hedge_is_not_sent_when_the_first_answer_is_quick(make_gateway: Make) -> None:
    url = make_gateway(
        {
            "providers": {"a": simulator("anthropic"), "b": simulator("anthropic")},
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "a", "model": "a"},
                        {"provider": "b", "model": "b"},
                    ],
                    "hedge_after_ms": 500,
                }
            },
        }
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-tollhouse-attempts"] == "1"
    assert raw.headers["x-tollhouse-served-by"] == "a/a"
