"""Retries with backoff and jitter that honour retry-after, bounded by the call's deadline,
and never multiplied by the SDK's own retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]


def one_model(provider: dict[str, Any], **route: Any) -> dict[str, Any]:
    return {
        "providers": {"up": provider},
        "models": {"m": {"deployments": [{"provider": "up", "model": "m-1"}], **route}},
    }


def client(url: str, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, **{"max_retries": 0, **options})


def test_transient_server_errors_are_retried_until_success(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": "500", "first_n": 2})))
    raw = client(url).messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert raw.parse().content[0].type == "text"
    assert raw.headers["x-tollhouse-attempts"] == "3"


@pytest.mark.parametrize("fault", ["529", "503", "reset", "mid-stream-error:1"])
def test_each_retryable_failure_is_retried(make_gateway: Make, fault: str) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": fault, "first_n": 1})))
    with client(url).messages.stream(model="m", max_tokens=300, messages=HI) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert stream.response.headers["x-tollhouse-attempts"] == "2"


def test_retry_waits_the_upstream_retry_after_then_succeeds(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": "429:0.4", "first_n": 1})))
    started = time.monotonic()
    message = client(url).messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert message.content[0].type == "text"
    assert elapsed >= 0.4


def test_client_errors_are_not_retried(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": "400"})))
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(url).messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert caught.value.response.headers["x-tollhouse-attempts"] == "1"


def test_a_wait_past_the_deadline_is_not_taken(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": "429:1.5"})))
    started = time.monotonic()
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(url).messages.create(
            model="m",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-tollhouse-timeout": "1.2"},
        )
    assert time.monotonic() - started < 1.0
    assert caught.value.response.headers["retry-after"] == "2"


def test_retry_after_beyond_the_policy_fails_fast(make_gateway: Make) -> None:
    url = make_gateway(
        one_model(simulator("anthropic", {"fault": "429:60"}), retry={"max_retry_after": 5})
    )
    started = time.monotonic()
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(url).messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0
    assert caught.value.response.headers["retry-after"] == "60"


def test_sdk_does_not_retry_on_top_of_the_gateway(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": "500"})))
    sdk = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY)  # default max_retries=2
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    response = caught.value.response
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-tollhouse-attempts"] == "3"
    assert response.request.headers["x-stainless-retry-count"] == "0"


def test_openai_sdk_does_not_retry_on_top_of_the_gateway(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("openai", {"fault": "500"})))
    sdk = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY)
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    assert caught.value.response.request.headers["x-stainless-retry-count"] == "0"


def test_the_sdk_timeout_bounds_the_gateway_deadline(make_gateway: Make) -> None:
    url = make_gateway(one_model(simulator("anthropic", {"fault": "hang"})))
    sdk = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, timeout=1.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(anthropic.OverloadedError, match="timeout"):
        sdk.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.5
