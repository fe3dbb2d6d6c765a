"""A circuit breaker per deployment: stop sending calls to an upstream that keeps failing,
so they go straight to a fallback instead of waiting on a dead upstream.

closed ──(N consecutive failures, or error rate ≥ r over ≥ m calls in the window)──▶ open
open ──(after `open_seconds`)──▶ half-open: one probe call is let through
half-open ──probe succeeds──▶ closed;  ──probe fails──▶ open again

Every change of state is one `tollhouse.breaker` log line (`breaker deployment=... from=...
to=...`), rate-limited per deployment and state.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Literal

from tollhouse.config.model import BreakerPolicy
from tollhouse.observability.rate_limited_log import RateLimitedLog

BreakerState = Literal["closed", "open", "half_open"]

_log = RateLimitedLog(logging.getLogger("tollhouse.breaker"))
_LEVEL: dict[BreakerState, int] = {
    "open": logging.WARNING,
    "half_open": logging.INFO,
    "closed": logging.INFO,
}


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, name: str = "") -> None:
        """`name`: the deployment's, for the log."""
        self.policy = policy
        self.name = name
        self.state: BreakerState = "closed"
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.times_opened = 0

    def allow(self, now: float | None = None) -> bool:
        """Whether a call may be sent now; in half-open, only one probe at a time."""
        if self.state == "closed":
            return True
        now = time.monotonic() if now is None else now
        if self.state == "open":
            if now - self._opened_at < self.policy.open_seconds:
                return False
            self._change("half_open")
            self._probe_in_flight = False
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def seconds_until_half_open(self, now: float | None = None) -> float:
        """How long until an open breaker lets a probe through (0 unless it is open)."""
        if self.state != "open":
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, self._opened_at + self.policy.open_seconds - now)

    def record_success(self, now: float | None = None) -> None:
        self._consecutive = 0
        if self.state != "closed":
            self._change("closed")
            self._probe_in_flight = False
            self._outcomes.clear()
        self._remember(True, now)

    def record_failure(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._consecutive += 1
        if self.state == "half_open":
            self._open(now)
            return
        self._remember(False, now)
        if self.state == "closed" and self._should_trip():
            self._open(now)

    def release_probe(self) -> None:
        """A half-open probe ended without a verdict (e.g. the client went away)."""
        self._probe_in_flight = False

    def _remember(self, ok: bool, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        self._outcomes.append((now, ok))
        horizon = now - self.policy.window_seconds
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()

    def _should_trip(self) -> bool:
        if self._consecutive >= self.policy.consecutive_failures:
            return True
        calls = len(self._outcomes)
        if calls < self.policy.min_calls:
            return False
        failures = sum(1 for _, ok in self._outcomes if not ok)
        return failures / calls >= self.policy.error_rate

    def _open(self, now: float) -> None:
        self._change("open")
        self._opened_at = now
        self._probe_in_flight = False
        self.times_opened += 1

    def _change(self, state: BreakerState) -> None:
        _log.event(
            _LEVEL[state],
            "breaker",
            (self.name, state),
            {
                "deployment": self.name,
                "from": self.state,
                "to": state,
                "consecutive_failures": self._consecutive,
            },
        )
        self.state = state
