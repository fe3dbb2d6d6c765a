"""The guardrail monitor: calls observed per variant, a breaching canary rolled back once
through the action it was given, with an alert and a count of why."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import IN_PROCESS_CONFIG

from tollhouse.call import Call
from tollhouse.config import GatewayConfig, parse_config
from tollhouse.observability.alerts import Alerts
from tollhouse.rollout.monitor import GuardrailMonitor


def config(canary: float) -> GatewayConfig:
    route = {
        "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
        "variants": {"control": {"weight": 100 - canary}, "canary": {"weight": canary}},
        "guardrails": {"min_calls": 100},
    }
    return parse_config({**IN_PROCESS_CONFIG, "models": {"support": route}})


def served(variant: str, n: int) -> Call:
    call = Call("anthropic", "messages", {"model": "support"}, b"", {}, request_id=f"{variant}-{n}")
    call.variant = variant
    call.attempts = 1
    return call


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def __call__(self, route: str, variant: str, note: str) -> int | None:
        self.calls.append((route, variant, note))
        return 7


def fed_monitor(canary_errors: int) -> tuple[GuardrailMonitor, Alerts]:
    alerts = Alerts()
    monitor = GuardrailMonitor(config(10), alerts)
    for i in range(150):
        monitor.observe(served("control", i), 200, 0.5, None, 0.001)
        monitor.observe(served("canary", i), 500 if i < canary_errors else 200, 0.5, None, 0.001)
    return monitor, alerts


def checked(monitor: GuardrailMonitor, action: Any) -> list[Any]:
    async def run() -> list[Any]:
        monitor._action = action
        first = await monitor.check()
        second = await monitor.check()
        return [first, second]

    return asyncio.run(run())


def test_a_breaching_canary_is_rolled_back_once_with_an_alert_saying_why() -> None:
    monitor, alerts = fed_monitor(canary_errors=45)
    action = Recorder()
    first, second = checked(monitor, action)
    assert [(r.route, r.variant, r.version) for r in first] == [("support", "canary", 7)]
    assert second == []  # pending until the new version shows it at 0 %
    ((route, variant, note),) = action.calls
    assert (route, variant) == ("support", "canary")
    assert "guardrail rollback: support/canary from 10 % to 0 %: error_rate 0.3" in note
    assert "over 150 calls against the control's 150" in note
    (event,) = alerts.events
    assert event.kind == "canary_rollback"
    assert event.details["config_version"] == 7
    assert alerts.fired["canary_rollback"] == 1
    assert monitor.rollback_counts == {("support", "canary", "error_rate"): 1}


def test_a_healthy_canary_is_left_alone() -> None:
    monitor, alerts = fed_monitor(canary_errors=2)
    action = Recorder()
    assert checked(monitor, action) == [[], []]
    assert action.calls == []
    assert list(alerts.events) == []


def test_a_canary_back_at_zero_starts_a_fresh_window() -> None:
    monitor, _ = fed_monitor(canary_errors=45)
    monitor.configure(config(0))
    assert len(monitor.windows[("support", "canary")].samples) == 0
    assert len(monitor.windows[("support", "control")].samples) == 150
    assert monitor.verdicts() == {}  # a canary at 0 % is not judged


def test_scores_are_attributed_to_the_variant_that_served_the_request() -> None:
    monitor, _ = fed_monitor(canary_errors=0)
    assert monitor.arm_of("canary-3") == (("support", "canary"), None)
    assert monitor.score(("support", "canary"), 0.5)
    assert monitor.arm_of("unknown") is None
    assert not monitor.score(("support", "nope"), 0.5)
