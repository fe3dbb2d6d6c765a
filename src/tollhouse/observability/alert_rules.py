"""When an alert fires and when it is over: three small state machines fed from the request
path, each O(1) per call (fixed-size counters, no list of calls), none doing I/O.

Time is wall-clock seconds since the epoch (`time.time()`), passed in by the caller, so
cost buckets line up with clock hours and tests can drive the clock.

- `ErrorSpikeRule`: the share of failed calls over a sliding window. One event when the
  rate reaches the threshold, then silence until the rate has stayed under it for a whole
  window, which sends `resolved` and lets a new episode fire.
- `CostAnomalyRule`: the spend of the current bucket (an hour by default) against the mean
  spend per bucket of the ones before it. One event per anomalous episode, however many
  buckets it lasts; `resolved` once a whole bucket closes without an anomaly.
- `BudgetThresholds`: one notice per threshold and (scope, period); budgets have no episode
  to resolve, a new period starts from zero.
- `HitRatioFloorRule`: a route's prompt-cache hit ratio (cache reads over all input tokens)
  over a sliding window, against the floor its config sets (`prompt_cache.hit_ratio_floor`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from tollhouse.observability.alerts_config import (
    AlertKind,
    BudgetAlertConfig,
    CostAnomalyConfig,
    ErrorSpikeConfig,
)

AlertStatus = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: AlertKind
    status: AlertStatus
    message: str
    at: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The JSON body of webhooks and of the log line. `text` repeats `message` so that
        Slack and Mattermost incoming webhooks show it as is."""
        return {
            "kind": self.kind,
            "status": self.status,
            "message": self.message,
            "text": self.message,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="seconds"),
            "details": dict(self.details),
        }


_SLOTS = 60  # the window is counted in 60 slots: a sliding window at 1/60 of its resolution


class SlidingSums:
    """Two running totals (`first`, `second`) over a sliding window of `window_seconds`,
    kept in 60 slots: O(1) per `add`, fixed memory."""

    def __init__(self, window_seconds: float) -> None:
        self.first = 0
        self.second = 0
        self._width = window_seconds / _SLOTS
        self._slot_first = [0] * _SLOTS
        self._slot_second = [0] * _SLOTS
        self._newest: int | None = None  # absolute number of the newest slot
        self._latest = -math.inf

    def add(self, now: float, first: int, second: int) -> float:
        """Count (`first`, `second`) at `now`; returns `now` as `advance` does."""
        now = self.advance(now)
        index = self._newest % _SLOTS if self._newest is not None else 0
        self._slot_first[index] += first
        self._slot_second[index] += second
        self.first += first
        self.second += second
        return now

    def advance(self, now: float) -> float:
        """Slide the window to `now`; returns `now`, or the latest time seen if the clock
        stepped back (so a step back can neither end an episode early nor delay it)."""
        if now < self._latest:
            return self._latest
        self._latest = now
        slot = math.floor(now / self._width)
        newest = self._newest
        if newest is None or slot <= newest:
            self._newest = slot
            return now
        for number in range(newest + 1, newest + 1 + min(slot - newest, _SLOTS)):
            index = number % _SLOTS
            self.first -= self._slot_first[index]
            self.second -= self._slot_second[index]
            self._slot_first[index] = 0
            self._slot_second[index] = 0
        self._newest = slot
        return now


class ErrorSpikeRule:
    def __init__(self, config: ErrorSpikeConfig) -> None:
        self.config = config
        self.firing = False
        self._window = SlidingSums(config.window_seconds)  # calls, errors
        self._healthy_since: float | None = None

    @property
    def calls(self) -> int:
        """Calls in the window."""
        return self._window.first

    @property
    def errors(self) -> int:
        return self._window.second

    def observe(self, now: float, is_error: bool) -> AlertEvent | None:
        return self._evaluate(self._window.add(now, 1, int(is_error)))

    def tick(self, now: float) -> AlertEvent | None:
        """Re-evaluate without a call, so that an episode can end when traffic stops."""
        return self._evaluate(self._window.advance(now))

    def _evaluate(self, now: float) -> AlertEvent | None:
        config = self.config
        spiking = self.calls >= config.min_calls and self.errors >= config.error_rate * self.calls
        if not self.firing:
            if not spiking:
                return None
            self.firing = True
            self._healthy_since = None
            return self._event(now, "firing")
        if spiking:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = now
        elif now - self._healthy_since >= config.window_seconds:
            self.firing = False
            self._healthy_since = None
            return self._event(now, "resolved")
        return None

    def _event(self, now: float, status: AlertStatus) -> AlertEvent:
        config = self.config
        rate = self.errors / self.calls if self.calls else 0.0
        window = f"{config.window_seconds:g} s"
        if status == "firing":
            message = (
                f"Error rate {rate:.0%} over the last {window} ({self.errors} of {self.calls} "
                f"calls failed), threshold {config.error_rate:.0%}"
            )
        else:
            message = (
                f"Error rate back under {config.error_rate:.0%} for {window} "
                f"({self.errors} of {self.calls} calls failed in the last {window})"
            )
        details = {
            "window_seconds": config.window_seconds,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": round(rate, 4),
            "threshold": config.error_rate,
        }
        return AlertEvent("error_spike", status, message, now, details)


class CostAnomalyRule:
    """`advance(now)` first, then `add(cost)`: a bucket that closes may end an episode, and
    the call's cost may start one in the new bucket."""

    def __init__(self, config: CostAnomalyConfig) -> None:
        self.config = config
        self.firing = False
        self._factor = Decimal(str(config.factor))
        self._spend = [Decimal(0)] * (config.trailing_buckets + 1)  # ring, by bucket number
        self._bucket: int | None = None
        self._first_bucket = 0
        # The trailing buckets as a count and (factor x their sum): "spend > factor x mean"
        # is tested as "spend x count > factor x sum", exact, with no division per call.
        self._history = 0  # 0: no history yet
        self._trigger = Decimal(0)
        self._mean = Decimal(0)
        self._anomalous = False  # the current bucket

    def advance(self, now: float) -> AlertEvent | None:
        bucket = math.floor(now / self.config.bucket_seconds)
        current = self._bucket
        if current is None:
            self._bucket = self._first_bucket = bucket
            return None
        if bucket <= current:
            return None
        ring = len(self._spend)
        for number in range(current + 1, current + 1 + min(bucket - current, ring)):
            self._spend[number % ring] = Decimal(0)
        closed_anomalous = self._anomalous and bucket == current + 1
        self._bucket = bucket
        self._anomalous = False
        history = range(max(self._first_bucket, bucket - self.config.trailing_buckets), bucket)
        total = sum((self._spend[n % ring] for n in history), Decimal(0))
        self._history = len(history)
        self._trigger = total * self._factor
        self._mean = total / self._history
        if self.firing and not closed_anomalous:
            self.firing = False
            return self._event(now, "resolved", Decimal(0))
        return None

    def add(self, now: float, cost: Decimal) -> AlertEvent | None:
        if self._bucket is None:
            self.advance(now)
        assert self._bucket is not None
        index = self._bucket % len(self._spend)
        spend = self._spend[index] = self._spend[index] + cost
        if self._anomalous or not self._history:
            return None
        if spend * self._history > self._trigger and spend >= self.config.min_spend_usd:
            self._anomalous = True
            if not self.firing:
                self.firing = True
                return self._event(now, "firing", spend)
        return None

    def _event(self, now: float, status: AlertStatus, spend: Decimal) -> AlertEvent:
        config = self.config
        mean = self._mean
        bucket = f"{config.bucket_seconds:g} s"
        if status == "firing":
            message = (
                f"Spend of ${spend:.2f} in the current {bucket} is over {config.factor:g}x "
                f"the trailing mean of ${mean:.2f}"
            )
        else:
            message = f"Spend back to normal: a whole {bucket} closed under {config.factor:g}x"
        details = {
            "bucket_seconds": config.bucket_seconds,
            "spend_usd": str(spend),
            "trailing_mean_usd": str(mean),
            "factor": config.factor,
            "min_spend_usd": str(config.min_spend_usd),
        }
        return AlertEvent("cost_anomaly", status, message, now, details)


class BudgetThresholds:
    """Remembers, per (scope, period), how many thresholds were notified. The oldest pairs
    are forgotten beyond `max_tracked` (periods long over), so memory stays bounded.

    A jump over several thresholds at once sends one notice, for the highest one reached:
    the lower ones are then old news."""

    def __init__(self, config: BudgetAlertConfig, *, max_tracked: int = 10_000) -> None:
        self.thresholds = tuple(Decimal(str(t)) for t in sorted(set(config.thresholds)))
        self.max_tracked = max_tracked
        self._notified: OrderedDict[tuple[str, str], int] = OrderedDict()

    def observe(
        self, now: float, scope: str, period: str, spent: Decimal, limit: Decimal
    ) -> AlertEvent | None:
        if limit <= 0:
            return None
        key = (scope, period)
        done = self._notified.get(key, 0)
        reached = done
        while reached < len(self.thresholds) and spent >= limit * self.thresholds[reached]:
            reached += 1
        if reached == done:
            return None
        self._notified[key] = reached
        self._notified.move_to_end(key)
        if len(self._notified) > self.max_tracked:
            self._notified.popitem(last=False)
        threshold = self.thresholds[reached - 1]
        message = (
            f"Budget of {scope} for {period}: ${spent:.2f} spent of ${limit:.2f} "
            f"({spent / limit:.0%}), threshold {threshold:.0%} reached"
        )
        details = {
            "scope": scope,
            "period": period,
            "threshold": float(threshold),
            "spent_usd": str(spent),
            "limit_usd": str(limit),
        }
        return AlertEvent("budget", "firing", message, now, details)


class HitRatioFloorRule:
    """One route's prompt-cache hit ratio over the last `window_seconds`, against `floor`.
    One `firing` event when the window holds at least `min_input_tokens` input tokens and
    under `floor` of them were cache reads; `resolved` once it has not been under for a
    whole window (a window too thin to judge counts as not under, as for error spikes).
    Judged as calls arrive (`observe`)."""

    def __init__(
        self, route: str, floor: float, window_seconds: float, min_input_tokens: int
    ) -> None:
        self.route = route
        self.floor = floor
        self.window_seconds = window_seconds
        self.min_input_tokens = min_input_tokens
        self.firing = False
        self._window = SlidingSums(window_seconds)  # input tokens (all), cache reads
        self._healthy_since: float | None = None

    @property
    def ratio(self) -> float | None:
        """The window's ratio; None when it holds no input."""
        total = self._window.first
        return self._window.second / total if total else None

    def observe(self, now: float, input_tokens: int, cache_read: int) -> AlertEvent | None:
        """A finished call of the route: `input_tokens` all of its prompt, cache reads and
        writes included; `cache_read` those read from the cache."""
        now = self._window.add(now, input_tokens, cache_read)
        total, read = self._window.first, self._window.second
        under = total >= self.min_input_tokens and read < self.floor * total
        if not self.firing:
            if not under:
                return None
            self.firing = True
            self._healthy_since = None
            return self._event(now, "firing")
        if under:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = now
        elif now - self._healthy_since >= self.window_seconds:
            self.firing = False
            self._healthy_since = None
            return self._event(now, "resolved")
        return None

    def _event(self, now: float, status: AlertStatus) -> AlertEvent:
        ratio = self.ratio or 0.0
        window = f"{self.window_seconds:g} s"
        if status == "firing":
            message = (
                f"Prompt-cache hit ratio of route {self.route} is {ratio:.0%} over the last "
                f"{window}, under its floor of {self.floor:.0%}"
            )
        else:
            message = (
                f"Prompt-cache hit ratio of route {self.route} back at or over its floor of "
                f"{self.floor:.0%} for {window}"
            )
        details = {
            "route": self.route,
            "hit_ratio": round(ratio, 4),
            "floor": self.floor,
            "window_seconds": self.window_seconds,
            "input_tokens": self._window.first,
            "cache_read_tokens": self._window.second,
        }
        return AlertEvent("prompt_cache_floor", status, message, now, details)
