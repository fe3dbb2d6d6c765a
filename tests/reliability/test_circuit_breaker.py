"""A circuit breaker per deployment: open after repeated failures, skipped at once while
open, probed once when half-open."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY

from tollhouse.config.model import BreakerPolicy
from tollhouse.reliability.circuit_breaker import CircuitBreaker

HI = [{"role": "user", "content": "hi"}]
POLICY = BreakerPolicy(
    consecutive_failures=3, error_rate=0.5, min_calls=10, window_seconds=30, open_seconds=5
)


def test_opens_after_consecutive_failures() -> None:
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        assert breaker.allow(now=0)
        breaker.record_failure(now=0)
    assert breaker.state == "open"
    assert not breaker.allow(now=1)


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(POLICY)
    breaker.record_failure(now=0)
    breaker.record_failure(now=0)
    breaker.record_success(now=0)
    breaker.record_failure(now=0)
    assert breaker.state == "closed"


def test_opens_on_error_rate_over_the_window() -> None:
    breaker = CircuitBreaker(POLICY)
    for i in range(10):
        if i % 2:
            breaker.record_failure(now=i)
        else:
            breaker.record_success(now=i)
    assert breaker.state == "open"


def test_old_outcomes_leave_the_window() -> None:
    breaker = CircuitBreaker(POLICY)
    for i in range(8):
        breaker.record_success(now=i)
    breaker.record_failure(now=100)
    breaker.record_success(now=100)
    assert breaker.state == "closed"


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        breaker.record_failure(now=0)
    assert breaker.allow(now=6)
    assert breaker.state == "half_open"
    assert not breaker.allow(now=6)
    breaker.record_success(now=6)
    assert breaker.state == "closed"
    assert breaker.allow(now=6)


def test_a_failed_probe_opens_the_breaker_again() -> None:
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        breaker.record_failure(now=0)
    assert breaker.allow(now=6)
    breaker.record_failure(now=6)
    assert breaker.state == "open"
    assert not breaker.allow(now=7)
    assert breaker.times_opened == 2


def test_an_open_breaker_sends_calls_straight_to_the_fallback(
    make_gateway: Callable[[dict[str, Any]], str],
) -> None:
    url = make_gateway(
        {
            "reliability": {
                "retry": {"max_attempts": 1},
                "breaker": {"consecutive_failures": 2, "open_seconds": 60},
            },
            "providers": {
                "dead": simulator("anthropic", {"fault": "slow-first-byte:300"}),
                "spare": simulator("anthropic"),
            },
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "dead", "model": "primary"},
                        {"provider": "spare", "model": "spare"},
                    ],
                    "timeouts": {"first_byte": 0.1},
                }
            },
        }
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    for _ in range(2):
        raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
        assert raw.headers["x-tollhouse-attempts"] == "2"
    started = time.monotonic()
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert time.monotonic() - started < 0.1
    assert raw.headers["x-tollhouse-attempts"] == "1"
    assert raw.headers["x-tollhouse-served-by"] == "spare/spare"
    assert raw.headers["x-tollhouse-fallback"] == "true"
