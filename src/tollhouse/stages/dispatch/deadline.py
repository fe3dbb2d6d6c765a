"""The call's deadline: the route's total timeout, shortened to the client's own timeout
when it sends one, so that the client hears why before it gives up."""

from __future__ import annotations

from tollhouse.call import Call
from tollhouse.stages.route import RoutePlan

# Answers are given this much before the client's own timeout, so it hears why.
_CLIENT_DEADLINE_MARGIN = 0.5


def call_deadline(call: Call, plan: RoutePlan) -> float:
    """The monotonic time by which the answer must have started."""
    budget = plan.timeouts.total
    # The official SDKs send their timeout: per request as `x-stainless-timeout`, else the
    # client's read timeout as `x-stainless-read-timeout` (anthropic 2.x sends `NOT_GIVEN`
    # in the first when no per-request timeout was set).
    for header in ("x-tollhouse-timeout", "x-stainless-timeout", "x-stainless-read-timeout"):
        value = call.headers.get(header)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds > 0:
                budget = min(budget, max(seconds - _CLIENT_DEADLINE_MARGIN, seconds * 0.9))
    return call.started + budget
