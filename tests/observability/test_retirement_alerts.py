"""Model retirement notices through a real gateway: posted to a real webhook receiver at
the configured lead times, once per model and lead time, not again after a restart on the
same ledger; with the days left per served model on /metrics. Dates are relative to today
(catalog overrides), so the tests never go stale."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.observability.test_call_accounting import metric
from tests.observability.webhook_receiver import WebhookReceiver
from tests.stages.test_lifecycle import dated, entry
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.catalog.models import parse_catalog
from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.alerts_config import ModelRetirementConfig
from tollhouse.observability.retirement_alerts import RetirementAlerts, ServedModel
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.runner import BackgroundServer

CATALOG = {
    "models": [
        # 25 days left: the 30-day notice is due, not the 90- and 60-day ones.
        entry("soon-claude", "anthropic", state="deprecated", retires_on=dated(25)),
        entry("next-claude", "anthropic"),
        # Only a fallback deployment names it; 5 days left: the 7-day notice.
        entry("fallback-gpt", "openai", state="deprecated", retires_on=dated(5)),
        entry("far-gpt", "openai", state="deprecated", retires_on=dated(200)),
    ]
}
MODELS = {
    "soon": {
        "deployments": [
            {"provider": "sim-anthropic", "model": "soon-claude"},
            {"provider": "sim-openai", "model": "fallback-gpt"},
        ]
    },
    "far": {"deployments": [{"provider": "sim-openai", "model": "far-gpt"}]},
}


def config(tmp_path: Path, hook_url: str) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "models": MODELS,
        "catalog": CATALOG,
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        "alerts": {"webhooks": [{"url": hook_url + "/alerts", "kinds": ["model_retirement"]}]},
    }


def wait_for(receiver: WebhookReceiver, posts: int) -> None:
    deadline = time.monotonic() + 10
    while len(receiver.posts) < posts and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_model_nearing_retirement_is_notified_once_per_lead_time_across_a_restart(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver()
    with BackgroundServer(receiver) as hook:
        gateway = serve_gateway(config(tmp_path, hook.url))
        try:
            wait_for(receiver, 2)
            days = metric(
                gateway.url, "tollhouse_model_retirement_days", catalog_model="soon-claude"
            )
        finally:
            gateway.stop()
        restarted = serve_gateway(config(tmp_path, hook.url))
        try:
            fired = metric(restarted.url, "tollhouse_alerts_total", kind="model_retirement")
        finally:
            restarted.stop()
    notices = {post.body["details"]["model"]: post.body for post in receiver.posts}
    assert len(receiver.posts) == 2  # nothing again after the restart, nothing for far-gpt
    assert notices["soon-claude"]["details"]["lead_days"] == 30
    assert notices["soon-claude"]["details"]["days_left"] == 25
    assert notices["soon-claude"]["details"]["routes"] == ["soon"]
    assert f"retires on {dated(25)}, in 25 days" in notices["soon-claude"]["message"]
    assert notices["fallback-gpt"]["details"]["lead_days"] == 7
    assert days == 25
    assert fired == 0


def test_each_lead_time_is_notified_as_the_days_pass(tmp_path: Path) -> None:
    catalog = parse_catalog(
        {"models": [entry("soon-claude", "anthropic", state="deprecated", retires_on=dated(45))]}
    )
    served = [ServedModel(catalog.models[0], ("soon",))]
    clock = [time.time()]

    async def scenario() -> list[int]:
        store = SQLiteLedgerStore(tmp_path / "ledger.db")
        alerts = Alerts()
        rule = RetirementAlerts(
            ModelRetirementConfig(), served, alerts, store, clock=lambda: clock[0]
        )
        leads = []
        try:
            for day in range(45):  # a check every day until the retirement
                clock[0] = time.time() + day * 86_400
                leads += [event.details["lead_days"] for event in await rule.check()]
                leads += [event.details["lead_days"] for event in await rule.check()]
        finally:
            await store.aclose()
        return leads

    assert asyncio.run(scenario()) == [60, 30, 7]


def test_with_the_ledger_off_notices_are_kept_in_memory(tmp_path: Path) -> None:
    settings = {**IN_PROCESS_CONFIG, "models": MODELS, "catalog": CATALOG}
    gateway = Gateway(parse_config({**settings, "ledger": {"backend": "off"}}))

    async def scenario() -> tuple[int, int]:
        first = await gateway.retirement_alerts.check()
        again = await gateway.retirement_alerts.check()
        return len(first), len(again)

    assert asyncio.run(scenario()) == (2, 0)
