"""Rate limits: advertised on every response in each provider's header names, enforced per
minute with 429 and retry-after."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import openai
import pytest
from tests.simulator.conftest import anthropic_client, error_of, openai_client

from tollhouse.simulator.rate_limits import RateLimits
from tollhouse.wire.rate_limit_times import go_duration

HI: list[Any] = [{"role": "user", "content": "hi"}]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_anthropic_responses_carry_rate_limit_headers_and_a_request_id(
    claude: anthropic.Anthropic,
) -> None:
    raw = claude.messages.with_raw_response.create(model="m", max_tokens=5, messages=HI)
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["content-type"] == "application/json"
    for kind in ("requests", "input-tokens", "output-tokens", "tokens"):
        prefix = f"anthropic-ratelimit-{kind}-"
        assert int(raw.headers[prefix + "limit"]) > 0
        assert int(raw.headers[prefix + "remaining"]) <= int(raw.headers[prefix + "limit"])
        assert RFC3339.match(raw.headers[prefix + "reset"])


def test_openai_responses_carry_rate_limit_headers_and_a_request_id(gpt: openai.OpenAI) -> None:
    raw = gpt.chat.completions.with_raw_response.create(model="m", messages=HI)
    assert raw.headers["x-request-id"].startswith("req_")
    for kind in ("requests", "tokens"):
        assert int(raw.headers[f"x-ratelimit-limit-{kind}"]) > 0
        assert int(raw.headers[f"x-ratelimit-remaining-{kind}"]) >= 0
        assert re.match(r"^[\dhms.]+$", raw.headers[f"x-ratelimit-reset-{kind}"])


def test_requests_over_the_limit_get_429_with_retry_after(serve_simulator: Any) -> None:
    server = serve_simulator(rate_limit_requests_per_minute=2)
    client = anthropic_client(server)
    for _ in range(2):
        raw = client.messages.with_raw_response.create(model="m", max_tokens=5, messages=HI)
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "0"
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="m", max_tokens=5, messages=HI)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert error_of(caught.value.body)["type"] == "rate_limit_error"
    assert "2 requests per minute" in caught.value.message


def test_openai_input_tokens_over_the_limit_get_429(serve_simulator: Any) -> None:
    client = openai_client(serve_simulator(rate_limit_input_tokens_per_minute=50))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x" * 400}])
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"]


def test_buckets_refill_continuously() -> None:
    now = [0.0]
    limits = RateLimits(60, 1000, 1000, clock=lambda: now[0])
    for _ in range(60):
        assert limits.admit(1) is None
    refusal = limits.admit(1)
    assert refusal is not None
    assert refusal.dimension == "requests"
    assert refusal.retry_after_s == 1
    now[0] += 1.0
    assert limits.admit(1) is None


def test_output_tokens_are_settled_after_the_answer() -> None:
    limits = RateLimits(100, 1000, 10, clock=lambda: 0.0)
    assert limits.admit(1) is None
    limits.charge_output(50)
    refusal = limits.admit(1)
    assert refusal is not None
    assert refusal.dimension == "output tokens"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.02, "20ms"), (1.5, "1.5s"), (360.0, "6m0s"), (3723.0, "1h2m3s")]
)
def test_openai_reset_durations_read_like_the_api(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
