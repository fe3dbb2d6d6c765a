"""An outage reaches the caller at once, with headers that say what to do: `retry-after` is
the real time until the breaker lets a probe through, and `x-should-retry: false` where an
SDK's own retries could not help, so both official SDKs with their default retries give up
in well under a second instead of waiting 2 x retry-after. And a gateway never says
"circuit open" when no breaker opened."""

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


def broken_route(fmt: str, open_seconds: float = 30) -> dict[str, Any]:
    return {
        "reliability": {
            "retry": {"max_attempts": 1},
            "breaker": {"consecutive_failures": 1, "open_seconds": open_seconds},
        },
        "providers": {"p": simulator(fmt, {"fault": "500"})},
        "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
    }


def test_the_anthropic_sdk_gives_up_at_once_when_the_breaker_is_open(make_gateway: Make) -> None:
    url = make_gateway(broken_route("anthropic"))
    sdk = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY)  # default max_retries=2
    for _ in range(2):  # the attempt that opens the breaker, then a call it skips
        started = time.monotonic()
        with pytest.raises(anthropic.APIStatusError) as caught:
            sdk.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
        assert time.monotonic() - started < 1.5
        response = caught.value.response
        assert response.status_code == 529
        assert response.headers["x-should-retry"] == "false"
        assert 28 <= int(response.headers["retry-after"]) <= 30
        assert response.request.headers["x-stainless-retry-count"] == "0"
    assert "circuit breaker opened" in caught.value.message
    assert "next probe is in" in caught.value.message


def test_the_openai_sdk_gives_up_at_once_when_the_breaker_is_open(make_gateway: Make) -> None:
    url = make_gateway(broken_route("openai"))
    sdk = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY)  # default max_retries=2
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as caught:
            sdk.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
        assert time.monotonic() - started < 1.5
        assert caught.value.status_code == 503
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert 28 <= int(caught.value.response.headers["retry-after"]) <= 30
        assert caught.value.response.request.headers["x-stainless-retry-count"] == "0"


def test_a_failed_half_open_probe_says_when_the_next_one_is(make_gateway: Make) -> None:
    url = make_gateway(broken_route("anthropic", open_seconds=0.5))
    sdk = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY)
    with pytest.raises(anthropic.APIStatusError):
        sdk.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    time.sleep(0.6)  # half-open: the next call is the probe, and it fails
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.5
    headers = caught.value.response.headers
    assert headers["x-tollhouse-attempts"] == "1"
    assert headers["x-should-retry"] == "false"
    assert headers["retry-after"] == "1"


def test_a_single_attempt_with_a_closed_breaker_leaves_the_retry_to_the_sdk(
    make_gateway: Make,
) -> None:
    url = make_gateway(
        {
            "reliability": {"retry": {"max_attempts": 1}},
            "providers": {"p": simulator("anthropic", {"fault": "500"})},
            "models": {
                "m": {
                    "deployments": [{"provider": "p", "model": "m"}],
                    "degrade": {"retry_after_seconds": 1},
                }
            },
        }
    )
    sdk = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=1)
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    response = caught.value.response
    assert "x-should-retry" not in response.headers
    assert response.headers["retry-after"] == "1"  # the degrade policy's figure
    assert response.request.headers["x-stainless-retry-count"] == "1"


def test_a_fresh_gateway_never_claims_an_open_circuit(make_gateway: Make) -> None:
    url = make_gateway(
        {
            "providers": {"p": simulator("anthropic")},
            "models": {"m": {"deployments": [{"provider": "p", "model": "m"}]}},
        }
    )
    sdk = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY)
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.create(
            model="m",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-tollhouse-timeout": "1e-9"},  # no time for any attempt
        )
    assert time.monotonic() - started < 1.5
    assert "circuit" not in caught.value.message
    assert "deadline" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    metrics = sdk.get("/metrics", cast_to=str)
    assert 'tollhouse_breaker_state{deployment="p/m"} 0.0' in metrics
