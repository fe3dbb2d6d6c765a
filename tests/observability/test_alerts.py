"""When alerts fire and when their episode ends, the config section, the log line and the
metrics. Time is driven through the `now` arguments; webhooks are in
test_alerts_webhooks.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from decimal import Decimal

import msgspec
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from tollhouse.observability.alerts import Alerts, AlertsConfig
from tollhouse.observability.alerts_config import (
    BudgetAlertConfig,
    CostAnomalyConfig,
    ErrorSpikeConfig,
)

T0 = 1_800_000_000.0  # on an hour boundary
HOUR = 3600.0
SPIKE = ErrorSpikeConfig(window_seconds=60, min_calls=20, error_rate=0.5)


def alerts(**sections: object) -> Alerts:
    return Alerts(msgspec.convert(sections, AlertsConfig))


def spike_alerts() -> Alerts:
    return Alerts(AlertsConfig(error_spike=SPIKE, cost_anomaly=CostAnomalyConfig(enabled=False)))


def calls(a: Alerts, start: float, n: int, *, errors: int, step: float = 0.1) -> float:
    """`n` calls from `start`, `errors` of them failed, spread evenly; returns the time after."""
    for i in range(n):
        failed = (i + 1) * errors // n > i * errors // n
        a.observe_call(now=start + i * step, is_error=failed, cost_usd=None)
    return start + n * step


def statuses(a: Alerts, kind: str) -> list[str]:
    return [e.status for e in a.events if e.kind == kind]


def spend(a: Alerts, start: float, total: Decimal, n: int = 10) -> None:
    """`total` USD spread over `n` calls in the minute after `start`."""
    for i in range(n):
        a.observe_call(now=start + i, is_error=False, cost_usd=total / n)


def scrape(a: Alerts) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()

    class Source(Collector):
        def collect(self) -> Iterable[Metric]:
            return a.collect()

    registry.register(Source())
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# config


def test_empty_config_is_valid_with_documented_defaults() -> None:
    config = msgspec.convert({}, AlertsConfig)
    assert config.webhooks == ()
    assert config.error_spike == ErrorSpikeConfig(
        enabled=True, window_seconds=60, min_calls=20, error_rate=0.5
    )
    assert config.cost_anomaly.bucket_seconds == 3600
    assert config.cost_anomaly.trailing_buckets == 24
    assert config.cost_anomaly.factor == 3.0
    assert config.cost_anomaly.min_spend_usd == Decimal("1.0")
    assert config.budget.thresholds == (0.5, 0.8, 1.0)


def test_unknown_config_key_is_refused_naming_it() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"error_spkie"):
        msgspec.convert({"error_spkie": {}}, AlertsConfig)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.webhooks\[0\]\.kinds\[0\]"):
        msgspec.convert({"webhooks": [{"url": "http://x", "kinds": ["spam"]}]}, AlertsConfig)


def test_secret_reference_that_does_not_resolve_names_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_SUCH_HOOK_TOKEN", raising=False)
    with pytest.raises(ValueError, match=r"alerts\.webhooks\[0\]\.headers\.authorization"):
        alerts(
            webhooks=[{"url": "http://x", "headers": {"authorization": "env:NO_SUCH_HOOK_TOKEN"}}]
        )


# error spike


def test_error_spike_fires_once_while_the_rate_stays_high() -> None:
    a = spike_alerts()
    calls(a, T0, 200, errors=200)
    assert statuses(a, "error_spike") == ["firing"]


def test_error_spike_needs_min_calls_in_the_window() -> None:
    a = spike_alerts()
    calls(a, T0, 19, errors=19)
    assert a.events == type(a.events)([], maxlen=a.events.maxlen)


def test_error_rate_under_the_threshold_does_not_fire() -> None:
    a = spike_alerts()
    calls(a, T0, 100, errors=49)
    assert statuses(a, "error_spike") == []


def test_errors_older_than_the_window_no_longer_count() -> None:
    a = spike_alerts()
    calls(a, T0, 15, errors=15)
    calls(a, T0 + 61, 15, errors=15)  # 30 errors, never 20 calls within 60 s
    assert statuses(a, "error_spike") == []


def test_error_spike_resolves_only_after_a_full_healthy_window() -> None:
    a = spike_alerts()
    t = calls(a, T0, 40, errors=40)
    healthy = t + 60  # the errors have left the window
    calls(a, healthy, 30, errors=0)
    a.tick(now=healthy + 59)
    assert statuses(a, "error_spike") == ["firing"]
    a.tick(now=healthy + 60)
    assert statuses(a, "error_spike") == ["firing", "resolved"]


def test_error_spike_resolves_when_traffic_stops() -> None:
    a = spike_alerts()
    t = calls(a, T0, 40, errors=40)
    a.tick(now=t + 70)
    a.tick(now=t + 140)
    assert statuses(a, "error_spike") == ["firing", "resolved"]


def test_a_spike_after_recovery_is_a_new_episode() -> None:
    a = spike_alerts()
    t = calls(a, T0, 40, errors=40)
    a.tick(now=t + 70)
    a.tick(now=t + 140)
    calls(a, t + 150, 40, errors=40)
    assert statuses(a, "error_spike") == ["firing", "resolved", "firing"]


def test_errors_again_before_recovery_do_not_fire_again() -> None:
    a = spike_alerts()
    t = calls(a, T0, 40, errors=40)
    t = calls(a, t + 60, 30, errors=0)
    calls(a, t + 30, 40, errors=40)  # back over the threshold within the healthy window
    a.tick(now=t + 100)
    assert statuses(a, "error_spike") == ["firing"]


def test_a_clock_stepping_back_does_not_end_an_episode_early() -> None:
    a = spike_alerts()
    t = calls(a, T0, 40, errors=40)
    a.tick(now=t - 3600)
    a.tick(now=t + 30)
    assert statuses(a, "error_spike") == ["firing"]


# cost anomaly


def cost_alerts(**overrides: object) -> Alerts:
    return alerts(error_spike={"enabled": False}, cost_anomaly=overrides)


def test_cost_anomaly_never_fires_without_a_previous_bucket() -> None:
    a = cost_alerts()
    spend(a, T0, Decimal("500"))
    assert statuses(a, "cost_anomaly") == []


def test_cost_anomaly_below_min_spend_does_not_fire() -> None:
    a = cost_alerts(min_spend_usd="1.00")
    spend(a, T0, Decimal("0.01"))
    spend(a, T0 + HOUR, Decimal("0.90"))  # 90x the mean, but under $1
    assert statuses(a, "cost_anomaly") == []


def test_cost_anomaly_fires_when_spend_exceeds_factor_times_trailing_mean() -> None:
    a = cost_alerts()
    spend(a, T0, Decimal("2"))
    spend(a, T0 + HOUR, Decimal("6"))  # exactly 3x: not over
    assert statuses(a, "cost_anomaly") == []
    a.observe_call(now=T0 + HOUR + 100, is_error=False, cost_usd=Decimal("0.01"))
    assert statuses(a, "cost_anomaly") == ["firing"]
    assert a.events[-1].details["trailing_mean_usd"] == "2.0"


def test_trailing_mean_counts_quiet_buckets_since_start_as_zero() -> None:
    a = cost_alerts()
    spend(a, T0, Decimal("4"))
    spend(a, T0 + 3 * HOUR, Decimal("4"))  # mean of $4, $0, $0 is $1.33: 3x is $4
    assert statuses(a, "cost_anomaly") == []
    a.observe_call(now=T0 + 3 * HOUR + 100, is_error=False, cost_usd=Decimal("0.01"))
    assert statuses(a, "cost_anomaly") == ["firing"]


def test_trailing_mean_covers_at_most_trailing_buckets() -> None:
    a = cost_alerts(trailing_buckets=2)
    spend(a, T0, Decimal("100"))  # falls out of the trailing two buckets
    spend(a, T0 + HOUR, Decimal("1"))
    spend(a, T0 + 2 * HOUR, Decimal("1"))
    spend(a, T0 + 3 * HOUR, Decimal("3.5"))
    assert statuses(a, "cost_anomaly") == ["firing"]


def test_cost_anomaly_fires_once_per_episode_across_buckets() -> None:
    a = cost_alerts()
    spend(a, T0, Decimal("1"))
    spend(a, T0 + HOUR, Decimal("10"))
    spend(a, T0 + 2 * HOUR, Decimal("40"))  # still anomalous against the new mean
    assert statuses(a, "cost_anomaly") == ["firing"]


def test_cost_anomaly_resolves_when_a_whole_bucket_closes_normal() -> None:
    a = cost_alerts()
    spend(a, T0, Decimal("1"))
    spend(a, T0 + HOUR, Decimal("10"))
    spend(a, T0 + 2 * HOUR, Decimal("1"))
    assert statuses(a, "cost_anomaly") == ["firing"]
    a.tick(now=T0 + 3 * HOUR)
    assert statuses(a, "cost_anomaly") == ["firing", "resolved"]
    spend(a, T0 + 3 * HOUR + 60, Decimal("40"))
    assert statuses(a, "cost_anomaly") == ["firing", "resolved", "firing"]


# budget


def test_budget_thresholds_fire_once_each_per_scope_and_period() -> None:
    a = Alerts()
    for _ in range(2):
        for cents in range(0, 130, 5):
            a.observe_budget(
                scope="key:key_abc",
                period="2026-11",
                spent=Decimal(cents) / 100,
                limit=Decimal("1.00"),
                now=T0,
            )
    assert [e.details["threshold"] for e in a.events] == [0.5, 0.8, 1.0]


def test_budget_thresholds_fire_again_in_a_new_period_and_for_another_scope() -> None:
    a = Alerts()
    for scope, period in [
        ("user:alice", "2026-11"),
        ("user:alice", "2026-12"),
        ("user:bob", "2026-12"),
    ]:
        a.observe_budget(scope=scope, period=period, spent=Decimal("6"), limit=Decimal("10"))
    assert [(e.details["scope"], e.details["period"]) for e in a.events] == [
        ("user:alice", "2026-11"),
        ("user:alice", "2026-12"),
        ("user:bob", "2026-12"),
    ]


def test_budget_jump_over_several_thresholds_notifies_the_highest_once() -> None:
    a = Alerts()
    a.observe_budget(scope="team:x", period="2026-11-25", spent=Decimal("9"), limit=Decimal("10"))
    a.observe_budget(scope="team:x", period="2026-11-25", spent=Decimal("10"), limit=Decimal("10"))
    assert [e.details["threshold"] for e in a.events] == [0.8, 1.0]


def test_budget_without_a_limit_never_fires() -> None:
    a = Alerts(AlertsConfig(budget=BudgetAlertConfig()))
    a.observe_budget(scope="key:k", period="2026-11", spent=Decimal("5"), limit=Decimal("0"))
    assert list(a.events) == []


# log and metrics


def test_each_alert_is_one_warning_line_with_the_event(caplog: pytest.LogCaptureFixture) -> None:
    a = Alerts()
    with caplog.at_level(logging.WARNING, logger="tollhouse.alerts"):
        a.observe_budget(scope="key:k", period="2026-11", spent=Decimal("5"), limit=Decimal("10"))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "key:k" in record.getMessage()
    event = record.alert  # type: ignore[attr-defined]
    assert json.loads(json.dumps(event))["kind"] == "budget"
    assert event["status"] == "firing"
    assert event["text"] == event["message"]
    assert event["at"].endswith("+00:00")


def test_metrics_count_alerts_by_kind_and_show_active_episodes() -> None:
    a = spike_alerts()
    t = calls(a, T0, 40, errors=40)
    a.observe_budget(scope="key:k", period="2026-11", spent=Decimal("5"), limit=Decimal("10"))
    samples = scrape(a)
    assert samples[("tollhouse_alerts_total", (("kind", "error_spike"),))] == 1
    assert samples[("tollhouse_alerts_total", (("kind", "budget"),))] == 1
    assert samples[("tollhouse_alerts_total", (("kind", "cost_anomaly"),))] == 0
    assert samples[("tollhouse_alert_active", (("kind", "error_spike"),))] == 1
    a.tick(now=t + 70)
    a.tick(now=t + 140)
    assert scrape(a)[("tollhouse_alert_active", (("kind", "error_spike"),))] == 0


def test_recent_events_are_bounded() -> None:
    a = Alerts()
    for i in range(1000):
        a.observe_budget(scope=f"key:{i}", period="2026-11", spent=Decimal(1), limit=Decimal(1))
    assert len(a.events) == a.events.maxlen
    assert a.events[-1].details["scope"] == "key:999"
