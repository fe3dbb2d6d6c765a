"""Alerts: error-rate spikes, cost anomalies, budget thresholds and model retirements, each
told once per episode to the log, to Prometheus and to the configured webhooks.

The gateway feeds `observe_call` for every call and `observe_budget` whenever it settles a
budget; both are synchronous and O(1) (the rules in `alert_rules.py` keep fixed-size
counters). An alert is logged and counted right away; webhooks get it from a bounded queue
drained by a background task (`webhooks.py`), so the request path never waits on a receiver.

Wiring: the config model takes `AlertsConfig` from `alerts_config.py` (importing it from
here would close an import cycle through `tollhouse.config`). Then `Alerts(config.alerts)`,
`alerts.start()` once the loop runs, `metrics.add_gauges(alerts.collect)`, and
`await alerts.aclose()` at shutdown. Call everything from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.observability.alert_rules import (
    AlertEvent,
    BudgetThresholds,
    CostAnomalyRule,
    ErrorSpikeRule,
)
from tollhouse.observability.alerts_config import ALL_KINDS, AlertKind, AlertsConfig
from tollhouse.observability.metrics import gauge
from tollhouse.observability.webhooks import WebhookSender

__all__ = ["Alerts", "AlertsConfig"]

log = logging.getLogger("tollhouse.alerts")

RECENT_EVENTS = 200


class Alerts:
    """`events` holds the most recent alert events, oldest first, for tests and the admin
    API. `now` arguments are `time.time()` seconds; `clock` is only read by the periodic
    `tick` that lets an error spike resolve when traffic stops.

    Raises SecretError / ValueError at construction for a webhook whose URL or header
    reference cannot be resolved, naming the config key (`alerts.webhooks[0].headers.X`)."""

    def __init__(
        self,
        config: AlertsConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tick_interval: float = 1.0,
        webhook_queue: int = 256,
        retry_base: float = 0.5,
        retry_cap: float = 8.0,
        close_timeout: float = 10.0,
    ) -> None:
        config = config or AlertsConfig()
        self.config = config
        self.events: deque[AlertEvent] = deque(maxlen=RECENT_EVENTS)
        self.fired: dict[AlertKind, int] = dict.fromkeys(ALL_KINDS, 0)
        self.webhooks = [
            WebhookSender(
                hook,
                key_path=f"alerts.webhooks[{i}]",
                max_queue=webhook_queue,
                retry_base=retry_base,
                retry_cap=retry_cap,
                close_timeout=close_timeout,
            )
            for i, hook in enumerate(config.webhooks)
        ]
        seen: set[str] = set()
        for i, sender in enumerate(self.webhooks):
            if sender.name in seen:  # two hooks on one host: keep their metrics apart
                sender.name = f"{sender.name}#{i}"
            seen.add(sender.name)
        self._spike = ErrorSpikeRule(config.error_spike) if config.error_spike.enabled else None
        self._cost = CostAnomalyRule(config.cost_anomaly) if config.cost_anomaly.enabled else None
        self._budget = BudgetThresholds(config.budget)
        self._clock = clock
        self._tick_interval = tick_interval
        self._ticker: asyncio.Task[None] | None = None

    def observe_call(self, *, now: float, is_error: bool, cost_usd: Decimal | None) -> None:
        """One finished call. `is_error`: the call failed upstream or in the gateway (status
        >= 500, or a 429 that came from upstream); the caller decides, not this module."""
        if self._spike is not None:
            event = self._spike.observe(now, is_error)
            if event is not None:
                self._emit(event)
        if self._cost is not None and cost_usd is not None:
            event = self._cost.advance(now)
            if event is not None:
                self._emit(event)
            event = self._cost.add(now, cost_usd)
            if event is not None:
                self._emit(event)

    def observe_budget(
        self, *, scope: str, period: str, spent: Decimal, limit: Decimal, now: float | None = None
    ) -> None:
        """The spend of one budget (`scope` "key:key_abc", "user:alice"; `period` "2026-11"
        or "2026-11-25") after a call settled. A limit of 0 or less means no limit."""
        event = self._budget.observe(
            self._clock() if now is None else now, scope, period, spent, limit
        )
        if event is not None:
            self._emit(event)

    def tick(self, now: float | None = None) -> None:
        """Re-evaluate the episodes without a call; `start` runs this every second."""
        now = self._clock() if now is None else now
        if self._spike is not None:
            event = self._spike.tick(now)
            if event is not None:
                self._emit(event)
        if self._cost is not None:
            event = self._cost.advance(now)
            if event is not None:
                self._emit(event)

    def start(self) -> None:
        """Start the webhook senders and the ticker on the running loop."""
        for hook in self.webhooks:
            hook.start()
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick_forever(), name="alerts-ticker"
            )

    async def aclose(self) -> None:
        """Deliver pending webhooks, waiting at most `close_timeout` seconds (the webhooks
        are closed side by side)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await asyncio.gather(*(hook.aclose() for hook in self.webhooks))

    def collect(self) -> Iterator[Metric]:
        """Metric families for `GatewayMetrics.add_gauges`."""
        fired = CounterMetricFamily("tollhouse_alerts", "Alerts fired, by kind", labels=["kind"])
        for kind, count in self.fired.items():
            fired.add_metric([kind], count)
        yield fired
        yield gauge(
            "tollhouse_alert_active",
            "1 while an alert episode is firing (budget notices have no episode)",
            ["kind"],
            [
                (["error_spike"], float(self._spike is not None and self._spike.firing)),
                (["cost_anomaly"], float(self._cost is not None and self._cost.firing)),
            ],
        )
        deliveries = CounterMetricFamily(
            "tollhouse_alert_webhook_deliveries",
            "Alert webhook deliveries by outcome: delivered, failed (gave up after retries), "
            "dropped (queue full or undelivered at shutdown)",
            labels=["webhook", "outcome"],
        )
        retries = CounterMetricFamily(
            "tollhouse_alert_webhook_retries",
            "Alert webhook attempts beyond the first",
            labels=["webhook"],
        )
        for hook in self.webhooks:
            deliveries.add_metric([hook.name, "delivered"], hook.delivered)
            deliveries.add_metric([hook.name, "failed"], hook.failed)
            deliveries.add_metric([hook.name, "dropped"], hook.dropped)
            retries.add_metric([hook.name], hook.retries)
        yield deliveries
        yield retries
        yield gauge(
            "tollhouse_alert_webhook_queue_depth",
            "Alerts waiting for delivery, by webhook",
            ["webhook"],
            [([hook.name], float(hook.queue_depth)) for hook in self.webhooks],
        )

    def notify(self, event: AlertEvent) -> None:
        """Tell `event` (from a rule kept outside this module, such as model retirement) to
        the log, the metrics and the webhooks that take its kind."""
        self._emit(event)

    def _emit(self, event: AlertEvent) -> None:
        self.events.append(event)
        if event.status == "firing":
            self.fired[event.kind] += 1
        payload = event.payload()
        log.warning(
            "alert %s %s: %s", event.kind, event.status, event.message, extra={"alert": payload}
        )
        body: bytes | None = None
        for hook in self.webhooks:
            if event.kind in hook.kinds:
                body = body or orjson.dumps(payload)
                hook.submit(body)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            try:
                self.tick()
            except Exception:  # a fault here must not end the ticker
                log.exception("alerts: evaluation failed")
