"""Which attempt outcomes count against a deployment's circuit breaker.

A breaker is shared by every tenant whose route uses the deployment, so only failures the
upstream is to blame for may open it: no client can take a route down for the others. A
timeout cut short by the client's own deadline (`x-tollhouse-timeout`, the SDK's timeout), a
client that went away, and the client's own bad request (4xx) never count; nor does a
context-window overflow, which says the prompt was too long for this model. Such an attempt,
if it was a half-open breaker's probe, hands the probe back, so the next call probes.

Each failure the upstream is to blame for is one `tollhouse.upstream` log line
(`upstream_failure deployment=... kind=... status=...`), rate-limited per deployment and
failure class.
"""

from __future__ import annotations

import logging
import time

from tollhouse.call import Call
from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.stages.dispatch.attempt import Failure
from tollhouse.stages.route import RoutePlan

_log = RateLimitedLog(logging.getLogger("tollhouse.upstream"))


def record_failure(call: Call, plan: RoutePlan, failure: Failure) -> None:
    """Record `failure`, which has just ended an attempt of `call`, on its deployment's
    breaker, as far as the upstream is to blame."""
    breaker = failure.target.breaker
    if failure.kind == "client_error":
        breaker.record_success()  # it answered; the request was wrong
    elif failure.kind == "context_window" or (
        failure.kind == "timeout" and _client_deadline_came(call, plan)
    ):
        breaker.release_probe()
    else:
        breaker.record_failure()
        label = failure.target.label
        _log.event(
            logging.WARNING,
            "upstream_failure",
            (label, failure.kind),
            {
                "deployment": label,
                "kind": failure.kind,
                "status": failure.status or "-",
                "breaker": breaker.state,
                "detail": repr(failure.message),
            },
        )


def _client_deadline_came(call: Call, plan: RoutePlan) -> bool:
    """Whether a timeout ending now is the client's own deadline: one the client set,
    shorter than the route's `timeouts.total`, has come (an earlier timeout, say on connect,
    is the upstream's)."""
    return (
        call.deadline < call.started + plan.timeouts.total
        and time.monotonic() >= call.deadline - _CLOCK_SLACK
    )


# Timers fire at their deadline or after; this only absorbs rounding.
_CLOCK_SLACK = 0.001
