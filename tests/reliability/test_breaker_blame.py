"""No tenant can open a breaker for the others: a deployment's breaker, shared by every key,
counts only failures the upstream is to blame for. Calls cut short by their own client's
deadline, clients that go away and clients' bad requests never open it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from tests.reliability.conftest import simulator
from tests.stages.test_keys_limits_budgets import create_key
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]
BREAKER_STATE = 'tollhouse_breaker_state{deployment="p/m"}'


def slow_route(tmp_path: Path, **breaker: Any) -> dict[str, Any]:
    """One deployment whose answers take 0.4 s to start (healthy, within its 5 s timeout),
    behind a breaker that opens on the second consecutive failure, and gateway keys."""
    return {
        "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
        "reliability": {
            "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.05},
            "breaker": {"consecutive_failures": 2, "open_seconds": 60, **breaker},
        },
        "providers": {"p": simulator("anthropic", {"fault": "slow-first-byte:400"})},
        "models": {
            "m": {
                "deployments": [{"provider": "p", "model": "m"}],
                "timeouts": {"first_byte": 5.0},
            }
        },
    }


def breaker_state(url: str) -> str:
    metrics = httpx.get(url + "/metrics").text
    return next(line for line in metrics.splitlines() if line.startswith(BREAKER_STATE))


def test_client_deadlines_never_open_the_breaker_for_other_keys(
    tmp_path: Path, make_gateway: Make
) -> None:
    _, hasty = create_key(tmp_path / "keys.db")
    _, patient = create_key(tmp_path / "keys.db")
    url = make_gateway(slow_route(tmp_path))
    hasty_client = anthropic.Anthropic(base_url=url, api_key=hasty, max_retries=0)
    for _ in range(5):  # the gateway's own deadline header
        with pytest.raises(anthropic.APIStatusError):
            hasty_client.messages.create(
                model="m",
                max_tokens=50,
                messages=HI,  # type: ignore[arg-type]
                extra_headers={"x-tollhouse-timeout": "0.15"},
            )
    sdk_timeout = anthropic.Anthropic(base_url=url, api_key=hasty, max_retries=0, timeout=0.3)
    for _ in range(3):  # an honest SDK timeout (sent as x-stainless-timeout)
        with pytest.raises((anthropic.APIStatusError, anthropic.APITimeoutError)):
            sdk_timeout.messages.create(model="m", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    assert breaker_state(url).endswith(" 0.0")
    patient_client = anthropic.Anthropic(base_url=url, api_key=patient, max_retries=0)
    for _ in range(3):
        raw = patient_client.messages.with_raw_response.create(
            model="m",
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
        )
        assert raw.http_response.status_code == 200
        assert raw.headers["x-tollhouse-attempts"] == "1"


def test_upstream_timeouts_still_open_the_breaker(tmp_path: Path, make_gateway: Make) -> None:
    _, secret = create_key(tmp_path / "keys.db")
    config = slow_route(tmp_path)
    config["models"]["m"]["timeouts"] = {"first_byte": 0.1}  # the route's own limit
    url = make_gateway(config)
    client = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model="m", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    assert breaker_state(url).endswith(" 2.0")


def test_a_client_that_goes_away_during_the_probe_does_not_keep_the_breaker_open(
    tmp_path: Path, make_gateway: Make
) -> None:
    _, secret = create_key(tmp_path / "keys.db")
    config = slow_route(tmp_path, consecutive_failures=1, open_seconds=0.5)
    config["models"]["m"]["timeouts"] = {"first_byte": 2.0}
    url = make_gateway(config)
    client = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    with pytest.raises(anthropic.APIStatusError):  # an upstream 500 opens the breaker
        client.messages.create(
            model="m",
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "500"},
        )
    assert breaker_state(url).endswith(" 2.0")
    time.sleep(0.7)  # half-open: the next call is the probe; its client leaves early
    body = {"model": "m", "max_tokens": 50, "messages": HI}
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/messages", json=body, headers=headers, timeout=0.15)
    time.sleep(0.3)  # the gateway notices the disconnect and cancels the attempt
    raw = client.messages.with_raw_response.create(model="m", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    assert raw.http_response.status_code == 200
    assert breaker_state(url).endswith(" 0.0")


def test_bad_requests_never_open_the_breaker(tmp_path: Path, make_gateway: Make) -> None:
    _, secret = create_key(tmp_path / "keys.db")
    url = make_gateway(slow_route(tmp_path, consecutive_failures=1))
    client = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    for _ in range(3):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(
                model="m",
                max_tokens=50,
                messages=HI,  # type: ignore[arg-type]
                extra_headers={"x-simulator-fault": "400"},
            )
    assert breaker_state(url).endswith(" 0.0")


def test_a_half_open_probe_that_loses_a_hedge_is_handed_back(make_gateway: Make) -> None:
    url = make_gateway(
        {
            "reliability": {
                "retry": {"max_attempts": 1},
                "breaker": {"consecutive_failures": 1, "open_seconds": 0.3},
            },
            "providers": {
                "slow": simulator(
                    "anthropic",
                    {"fault": "500", "first_n": 1},  # opens the breaker
                    {"fault": "slow-first-byte:400"},  # then every probe loses the hedge
                ),
                "quick": simulator("anthropic"),
            },
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "slow", "model": "s"},
                        {"provider": "quick", "model": "q"},
                    ],
                    "hedge_after_ms": 50,
                }
            },
        }
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    first = client.messages.with_raw_response.create(model="m", max_tokens=20, messages=HI)  # type: ignore[arg-type]
    assert first.headers["x-tollhouse-served-by"] == "quick/q"
    for _ in range(2):
        time.sleep(0.4)  # half-open: the call probes "slow", and the hedge on "quick" wins
        raw = client.messages.with_raw_response.create(model="m", max_tokens=20, messages=HI)  # type: ignore[arg-type]
        assert raw.headers["x-tollhouse-served-by"] == "quick/q"
        # The probe was let through: the breaker did not stay stuck half-open.
        assert raw.headers["x-tollhouse-attempts"] == "2"
