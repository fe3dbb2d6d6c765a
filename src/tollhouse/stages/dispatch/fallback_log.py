"""One `tollhouse.dispatch` log line each time a call moves on to a later deployment of its
route (`fallback model=... to=... after=...`), rate-limited per route, deployment and cause."""

from __future__ import annotations

import logging

from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.stages.route import RoutePlan, Target

_log = RateLimitedLog(logging.getLogger("tollhouse.dispatch"))


def log_fallback(plan: RoutePlan, to: Target, after: str) -> None:
    """`after`: the class of the failure that moved the call on, `breaker_open` when the
    deployments before were skipped, `slow` when a hedge's second attempt won."""
    _log.event(
        logging.INFO,
        "fallback",
        (plan.model, to.label, after),
        {"model": plan.model, "to": to.label, "after": after},
    )
