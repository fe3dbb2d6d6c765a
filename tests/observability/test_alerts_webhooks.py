"""Alerts delivered to a real webhook receiver on a loopback port: one POST per episode,
resolved events, budget thresholds, secret headers, retries, and a dead receiver that the
request path never waits for."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from tests.observability.webhook_receiver import WebhookReceiver, wait_until

from tollhouse.observability.alerts import Alerts, AlertsConfig
from tollhouse.server.runner import BackgroundServer, free_port

T0 = 1_800_000_000.0
HOUR = 3600.0


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    app = WebhookReceiver()
    with BackgroundServer(app) as server:
        yield app, server.url


def run(
    config: dict[str, Any], scenario: Callable[[Alerts], Awaitable[None]], **options: Any
) -> Alerts:
    """Run `scenario` against started Alerts, then close them (draining the webhooks)."""
    alerts = Alerts(msgspec.convert(config, AlertsConfig), retry_base=0.01, **options)

    async def main() -> None:
        alerts.start()
        try:
            await scenario(alerts)
        finally:
            await alerts.aclose()

    asyncio.run(main())
    return alerts


def failing_calls(alerts: Alerts, start: float, n: int) -> float:
    for i in range(n):
        alerts.observe_call(now=start + i * 0.1, is_error=True, cost_usd=None)
    return start + n * 0.1


def hook(url: str, **options: Any) -> dict[str, Any]:
    return {"webhooks": [{"url": url, **options}]}


def test_error_spike_posts_once_per_episode_with_resolved(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver

    async def scenario(alerts: Alerts) -> None:
        t = failing_calls(alerts, T0, 100)
        alerts.tick(now=t + 70)
        alerts.tick(now=t + 140)
        failing_calls(alerts, t + 200, 100)
        await wait_until(lambda: len(app.posts) == 3)

    run(hook(url + "/hooks/ops"), scenario)
    assert app.statuses_of("error_spike") == ["firing", "resolved", "firing"]
    first = app.posts[0]
    assert first.path == "/hooks/ops"
    assert first.headers["content-type"] == "application/json"
    assert set(first.body) == {"kind", "status", "message", "text", "at", "details"}
    assert first.body["text"] == first.body["message"]
    assert first.body["details"]["errors"] == 20
    assert first.body["at"] == "2027-01-15T08:00:01+00:00"


def test_cost_anomaly_posts_once_per_episode(receiver: tuple[WebhookReceiver, str]) -> None:
    app, url = receiver

    async def scenario(alerts: Alerts) -> None:
        for hour, dollars in enumerate(["1", "10", "40", "1"]):
            for i in range(20):
                alerts.observe_call(
                    now=T0 + hour * HOUR + i, is_error=False, cost_usd=Decimal(dollars) / 20
                )
        alerts.tick(now=T0 + 4 * HOUR)
        await wait_until(lambda: len(app.posts) == 2)

    run(hook(url), scenario)
    assert app.statuses_of("cost_anomaly") == ["firing", "resolved"]


def test_budget_thresholds_post_once_per_period_each(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver

    async def scenario(alerts: Alerts) -> None:
        for period in ["2026-11", "2026-11", "2026-12"]:
            for cents in range(0, 125, 5):
                alerts.observe_budget(
                    scope="key:key_abc",
                    period=period,
                    spent=Decimal(cents) / 100,
                    limit=Decimal("1.00"),
                )
        await wait_until(lambda: len(app.posts) == 6)

    run(hook(url), scenario)
    assert [(p.body["details"]["period"], p.body["details"]["threshold"]) for p in app.posts] == [
        ("2026-11", 0.5),
        ("2026-11", 0.8),
        ("2026-11", 1.0),
        ("2026-12", 0.5),
        ("2026-12", 0.8),
        ("2026-12", 1.0),
    ]


def test_no_post_below_min_calls_or_min_spend(receiver: tuple[WebhookReceiver, str]) -> None:
    app, url = receiver

    async def scenario(alerts: Alerts) -> None:
        failing_calls(alerts, T0, 19)
        for hour, dollars in enumerate(["0.01", "0.90"]):
            alerts.observe_call(
                now=T0 + (hour + 1) * HOUR, is_error=False, cost_usd=Decimal(dollars)
            )
        await asyncio.sleep(0.2)

    alerts = run(hook(url), scenario)
    assert list(alerts.events) == []
    assert app.requests == 0


def test_secret_header_reaches_the_receiver_and_is_never_logged(
    receiver: tuple[WebhookReceiver, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, url = receiver
    monkeypatch.setenv("ALERT_HOOK_TOKEN", "Bearer s3cret-hook-token")

    async def scenario(alerts: Alerts) -> None:
        alerts.observe_budget(
            scope="user:alice", period="2026-11", spent=Decimal(9), limit=Decimal(10)
        )
        await wait_until(lambda: len(app.posts) == 1)

    with caplog.at_level(logging.DEBUG):
        run(hook(url, headers={"Authorization": "env:ALERT_HOOK_TOKEN", "X-Team": "ops"}), scenario)
    assert app.posts[0].headers["authorization"] == "Bearer s3cret-hook-token"
    assert app.posts[0].headers["x-team"] == "ops"
    assert "s3cret" not in caplog.text


def test_webhook_url_may_be_a_secret_reference(
    receiver: tuple[WebhookReceiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, url = receiver
    monkeypatch.setenv("ALERT_HOOK_URL", url + "/services/T000/B000/XXXX?wait=true")

    async def scenario(alerts: Alerts) -> None:
        alerts.observe_budget(
            scope="user:alice", period="2026-11", spent=Decimal(9), limit=Decimal(10)
        )
        await wait_until(lambda: len(app.posts) == 1)

    run(hook("env:ALERT_HOOK_URL"), scenario)
    assert app.posts[0].path == "/services/T000/B000/XXXX?wait=true"


def test_receiver_500_is_retried_until_delivered() -> None:
    app = WebhookReceiver(statuses=[500, 503])
    with BackgroundServer(app) as server:

        async def scenario(alerts: Alerts) -> None:
            alerts.observe_budget(
                scope="key:k", period="2026-11", spent=Decimal(1), limit=Decimal(1)
            )
            await wait_until(lambda: len(app.posts) == 1)

        alerts = run(hook(server.url), scenario)
    assert app.requests == 3
    [sender] = alerts.webhooks
    assert (sender.delivered, sender.retries, sender.failed) == (1, 2, 0)


def test_receiver_that_keeps_failing_is_given_up_after_max_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = WebhookReceiver(statuses=[500] * 10)
    with BackgroundServer(app) as server:

        async def scenario(alerts: Alerts) -> None:
            alerts.observe_budget(
                scope="key:k", period="2026-11", spent=Decimal(1), limit=Decimal(1)
            )
            await wait_until(lambda: alerts.webhooks[0].failed == 1)

        run(hook(server.url, max_attempts=3), scenario)
    assert app.requests == 3
    assert "gave up after 3 attempt(s): HTTP 500" in caplog.text


def test_client_error_from_the_receiver_is_not_retried() -> None:
    app = WebhookReceiver(statuses=[400])
    with BackgroundServer(app) as server:

        async def scenario(alerts: Alerts) -> None:
            alerts.observe_budget(
                scope="key:k", period="2026-11", spent=Decimal(1), limit=Decimal(1)
            )
            await wait_until(lambda: alerts.webhooks[0].failed == 1)

        run(hook(server.url), scenario)
    assert app.requests == 1


def test_webhook_gets_only_the_kinds_it_asked_for(receiver: tuple[WebhookReceiver, str]) -> None:
    app, url = receiver

    async def scenario(alerts: Alerts) -> None:
        failing_calls(alerts, T0, 40)
        alerts.observe_budget(scope="key:k", period="2026-11", spent=Decimal(1), limit=Decimal(1))
        await wait_until(lambda: len(app.posts) == 1)
        await asyncio.sleep(0.1)

    run(hook(url, kinds=["budget"]), scenario)
    assert [p.body["kind"] for p in app.posts] == ["budget"]


def test_unreachable_webhook_does_not_block_observe_call_and_is_counted() -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    elapsed: list[float] = []

    async def scenario(alerts: Alerts) -> None:
        started = time.perf_counter()
        for i in range(50):
            alerts.observe_budget(
                scope=f"key:{i}", period="2026-11", spent=Decimal(1), limit=Decimal(1)
            )
            failing_calls(alerts, T0 + i * 1000, 40)
            alerts.tick(now=T0 + i * 1000 + 500)  # resolve, so the next spike is a new episode
            alerts.tick(now=T0 + i * 1000 + 600)
        elapsed.append(time.perf_counter() - started)

    alerts = run(hook(dead, max_attempts=2), scenario, webhook_queue=10, close_timeout=1.0)
    assert elapsed[0] < 1.0
    [sender] = alerts.webhooks
    assert len(alerts.events) == 150
    assert sender.delivered == 0
    assert sender.dropped > 0
    assert sender.failed + sender.dropped == 150
    assert sender.queue_depth == 0
