"""Breaker state changes, upstream failures and fallbacks each get one structured log line,
rate-limited, so an operator sees what happened and no client can flood the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(event + " ")]


def test_breaker_failures_and_fallbacks_are_logged_once_each_per_interval(
    make_gateway: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tollhouse")
    url = make_gateway(
        {
            "reliability": {
                "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02},
                "breaker": {"consecutive_failures": 4, "open_seconds": 60},
            },
            "providers": {
                "broken": simulator("anthropic", {"fault": "500"}),
                "spare": simulator("anthropic"),
            },
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "broken", "model": "b"},
                        {"provider": "spare", "model": "s"},
                    ]
                }
            },
        }
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    for _ in range(10):
        raw = client.messages.with_raw_response.create(model="m", max_tokens=20, messages=HI)  # type: ignore[arg-type]
        assert raw.headers["x-tollhouse-served-by"] == "spare/s"
    failures = lines(caplog, "upstream_failure")
    assert len(failures) == 1  # 4 failures in well under the interval
    assert "deployment=broken/b kind=server_error status=500" in failures[0].getMessage()
    assert failures[0].tollhouse["kind"] == "server_error"  # type: ignore[attr-defined]
    opened = lines(caplog, "breaker")
    assert len(opened) == 1
    assert "deployment=broken/b from=closed to=open" in opened[0].getMessage()
    assert opened[0].levelno == logging.WARNING
    fallbacks = {r.getMessage().split(" suppressed=")[0] for r in lines(caplog, "fallback")}
    assert fallbacks == {
        "fallback model=m to=spare/s after=server_error",
        "fallback model=m to=spare/s after=breaker_open",
    }
