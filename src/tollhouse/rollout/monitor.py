"""The guardrail monitor: every canary of every route with variants, watched against its
route's control, and set back to 0 % by itself when a guardrail breaches (guardrails.py).

Accounting feeds `observe` once per finished call of a route with variants (O(1): one
sample appended to its variant's window); the app's quality scores arrive by `score`
(`POST /v1/feedback`). A background task judges each canary every
`guardrails.check_interval_seconds`. On a breach the `rollback` action the gateway gave
moves the canary's weight to the control as a new config version, noted with the
guardrail's figures (the record of why), and the monitor tells it as a `canary_rollback`
alert (log line, `tollhouse_alerts{kind}`, webhooks) and counts it in
`tollhouse_guardrail_rollbacks{route,variant,guardrail}`.

Each gateway process judges the calls it served. Label values come from the config only
(routes, variants, guardrail names), and the request ids kept to attribute scores are
bounded, so no client can grow the monitor's memory or series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.call import Call
from tollhouse.config import GatewayConfig
from tollhouse.config.rollout import GuardrailsConfig
from tollhouse.observability.alert_rules import AlertEvent
from tollhouse.observability.alerts import Alerts
from tollhouse.rollout.guardrails import Figure, Verdict, judge, summary
from tollhouse.rollout.window import ArmWindow, Sample

log = logging.getLogger("tollhouse.rollout")

Arm = tuple[str, str]  # (route, variant)
# (route, variant, note) -> the config version that set it to 0 %, or None when none was
# stored (the monitor then tries again at its next check).
RollbackAction = Callable[[str, str, str], Awaitable[int | None]]

_RECENT_REQUESTS = 100_000
_RECENT_ROLLBACKS = 100


@dataclass(frozen=True, slots=True)
class Rollback:
    """A canary the monitor set back to 0 %, and why."""

    route: str
    variant: str
    weight: float  # the weight it had
    at: float
    figures: tuple[Figure, ...]  # the breached guardrails
    version: int | None  # the config version that did it

    @property
    def reason(self) -> str:
        return summary(self.figures)


@dataclass(frozen=True, slots=True)
class _Route:
    control: str
    guardrails: GuardrailsConfig
    weights: dict[str, float]


class GuardrailMonitor:
    """Watches the canaries of `config`'s routes (`configure` again at each new snapshot)."""

    def __init__(
        self, config: GatewayConfig, alerts: Alerts, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._alerts = alerts
        self._clock = clock
        self._routes: dict[str, _Route] = {}
        self.windows: dict[Arm, ArmWindow] = {}
        # request id -> (its arm, its key id): whose call a posted score is about. Two
        # generations of plain dicts: when the newer is full it becomes the older one, so
        # between half and all of the last `_RECENT_REQUESTS` calls are known.
        self._requests: dict[str, tuple[Arm, str | None]] = {}
        self._older_requests: dict[str, tuple[Arm, str | None]] = {}
        self._pending: set[Arm] = set()  # rolled back, until a snapshot shows it at 0 %
        self.rollbacks: deque[Rollback] = deque(maxlen=_RECENT_ROLLBACKS)
        self.rollback_counts: dict[tuple[str, str, str], int] = {}
        self._action: RollbackAction | None = None
        self._task: asyncio.Task[None] | None = None
        self.configure(config)

    def configure(self, config: GatewayConfig) -> None:
        """Watch the routes of `config` from now on: the windows of variants it still has
        carry over (a canary set to 0 % starts afresh when it comes back)."""
        routes: dict[str, _Route] = {}
        windows: dict[Arm, ArmWindow] = {}
        for name, route in config.models.items():
            if not route.variants or not route.guardrails.enabled:
                continue
            weights = {variant: v.weight for variant, v in route.variants.items()}
            routes[name] = _Route(route.control, route.guardrails, weights)
            for variant, weight in weights.items():
                arm = (name, variant)
                window = self.windows.get(arm)
                if window is None or window.seconds != route.guardrails.window_seconds:
                    window = ArmWindow(route.guardrails.window_seconds)
                if weight == 0 and variant != route.control:
                    window.clear()
                    self._pending.discard(arm)
                windows[arm] = window
        self._routes = routes
        self.windows = windows

    def observe(
        self, call: Call, status: int, latency: float, ttft: float | None, cost: float | None
    ) -> None:
        """One finished call of a route's variant (`call.variant` set)."""
        arm = (call.model, call.variant or "")
        window = self.windows.get(arm)
        if window is None:
            return
        error = status >= 500 or (status == 429 and call.attempts > 0)
        window.samples.append(Sample(self._clock(), error, call.truncated, latency, ttft, cost))
        requests = self._requests
        requests[call.request_id] = (arm, call.key_id)
        if len(requests) >= _RECENT_REQUESTS // 2:
            self._older_requests = requests
            self._requests = {}

    def arm_of(self, request_id: str) -> tuple[Arm, str | None] | None:
        """The route and variant that served a recent call of this process, and the key
        it was made with, if known."""
        return self._requests.get(request_id) or self._older_requests.get(request_id)

    def score(self, arm: Arm, score: float) -> bool:
        """A quality score (0 to 1) for a call of `arm`; False when no window watches it."""
        window = self.windows.get(arm)
        if window is None:
            return False
        window.add_score(self._clock(), score)
        return True

    def verdicts(self) -> dict[Arm, Verdict]:
        """Each canary in traffic (weight above 0) judged against its control, now."""
        now = self._clock()
        found: dict[Arm, Verdict] = {}
        for name, route in self._routes.items():
            control = self.windows[(name, route.control)]
            control.prune(now)
            for variant, weight in route.weights.items():
                if variant == route.control or weight == 0:
                    continue
                window = self.windows[(name, variant)]
                window.prune(now)
                found[(name, variant)] = judge(window, control, route.guardrails)
        return found

    async def check(self) -> list[Rollback]:
        """Judge every canary; roll back those that breached. The rollbacks done."""
        done = []
        for arm, verdict in self.verdicts().items():
            if not verdict.breaches or arm in self._pending or self._action is None:
                continue
            rollback = await self._roll_back(arm, verdict)
            if rollback is not None:
                done.append(rollback)
        return done

    def start(self, action: RollbackAction) -> None:
        """Judge on the running loop every check interval, rolling back with `action`."""
        self._action = action
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._check_forever(), name="guardrail-monitor"
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "tollhouse_guardrail_rollbacks",
            "Canaries set back to 0 % by a guardrail, by route, variant and guardrail",
            labels=["route", "variant", "guardrail"],
        )
        for labels, count in self.rollback_counts.items():
            family.add_metric(list(labels), count)
        yield family

    async def _roll_back(self, arm: Arm, verdict: Verdict) -> Rollback | None:
        route, variant = arm
        weight = self._routes[route].weights[variant]
        breaches = verdict.breaches
        note = (
            f"guardrail rollback: {route}/{variant} from {weight:g} % to 0 %: "
            f"{summary(breaches)} over {verdict.calls} calls against the control's "
            f"{verdict.control_calls}"
        )
        assert self._action is not None
        try:
            version = await self._action(route, variant, note)
        except Exception:  # the next check tries again
            log.exception("guardrail rollback of %s/%s failed", route, variant)
            return None
        if version is None:
            return None
        self._pending.add(arm)
        rollback = Rollback(route, variant, weight, self._clock(), breaches, version)
        self.rollbacks.append(rollback)
        for figure in breaches:
            key = (route, variant, figure.guardrail)
            self.rollback_counts[key] = self.rollback_counts.get(key, 0) + 1
        self._alerts.notify(
            AlertEvent(
                kind="canary_rollback",
                status="firing",
                message=f"{note} (config version {version})",
                at=rollback.at,
                details={
                    "route": route,
                    "variant": variant,
                    "weight": weight,
                    "config_version": version,
                    "calls": verdict.calls,
                    "control_calls": verdict.control_calls,
                    "figures": [figure.as_json() for figure in breaches],
                },
            )
        )
        return rollback

    async def _check_forever(self) -> None:
        while True:
            intervals = [r.guardrails.check_interval_seconds for r in self._routes.values()]
            await asyncio.sleep(min(intervals, default=5.0))
            try:
                await self.check()
            except Exception:  # a fault here must not end the monitor
                log.exception("guardrail check failed")
