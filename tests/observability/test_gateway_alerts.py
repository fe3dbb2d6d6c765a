"""Alerts raised by real traffic through the gateway reach a real webhook receiver."""

from __future__ import annotations

import time

import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.webhook_receiver import WebhookReceiver
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer


def test_an_error_spike_in_traffic_posts_one_alert_to_the_webhook() -> None:
    receiver = WebhookReceiver()
    with BackgroundServer(receiver) as hook:
        gateway = serve_gateway(
            {
                **IN_PROCESS_CONFIG,
                "alerts": {
                    "error_spike": {"min_calls": 6, "error_rate": 0.5, "window_seconds": 60},
                    "webhooks": [{"url": hook.url + "/alerts"}],
                },
            }
        )
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        try:
            for _ in range(3):  # healthy traffic, then a run of failures
                client.chat.completions.create(
                    model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}]
                )
            for _ in range(10):
                with pytest.raises(openai.APIStatusError):
                    client.chat.completions.create(
                        model="gpt-4o-mini",
                        max_tokens=5,
                        messages=[{"role": "user", "content": "x"}],
                        extra_headers={"x-simulator-fault": "500"},
                    )
            # Client mistakes are not service errors: they never raise the alert.
            for _ in range(5):
                with pytest.raises(openai.NotFoundError):
                    client.chat.completions.create(
                        model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
                    )
            deadline = time.monotonic() + 5
            while not receiver.posts and time.monotonic() < deadline:
                time.sleep(0.01)
            assert metric(gateway.url, "tollhouse_alerts_total", kind="error_spike") == 1
            assert metric(gateway.url, "tollhouse_alert_active", kind="error_spike") == 1
        finally:
            gateway.stop()
    assert receiver.statuses_of("error_spike") == ["firing"]
    assert receiver.posts[0].path == "/alerts"
