"""Graceful degradation: what a client gets when every deployment of its route failed.

Never a hang and never a bare 500: either a configured static answer, served as a normal
answer in the client's format (streamed if it asked for a stream) and marked
`x-tollhouse-degraded: true`; or a clean overload error (529 for Anthropic clients, 503 for
OpenAI clients; 429 when every failure was a rate limit) with `Retry-After`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import orjson

from tollhouse.call import Call
from tollhouse.errors import Overloaded, RateLimited, TollhouseError
from tollhouse.stages.dispatch.attempt import Failure
from tollhouse.stages.replayed_answer import replayed_answer
from tollhouse.stages.route import RoutePlan
from tollhouse.types import Reply

StaleLookup = Callable[[Call, RoutePlan], Awaitable[Reply | None]]


async def degrade(
    call: Call,
    plan: RoutePlan,
    failures: list[Failure],
    skipped: int,
    stale: StaleLookup | None = None,
) -> Reply:
    call.degraded = True
    mode = plan.degrade.mode
    if mode == "stale_cache" and stale is not None:
        reply = await stale(call, plan)
        if reply is not None:
            reply.add_header("x-tollhouse-degraded", "true")
            return reply
    if mode == "static" and call.endpoint != "count_tokens":
        return _static_answer(call, plan.degrade.static_text)
    raise _exhausted_error(call, plan, failures, skipped)


def _exhausted_error(
    call: Call, plan: RoutePlan, failures: list[Failure], skipped: int
) -> TollhouseError:
    """The clean overload error, whose headers say what the client should do:

    - every deployment's breaker is open: `retry-after` is the time until the first one
      lets a probe through, and `x-should-retry: false`, since no call gets through sooner
      (the SDKs would otherwise hold the caller for their own retries);
    - the gateway already retried, or an upstream asked for a longer wait than the route
      takes: `x-should-retry: false` (an SDK retrying on top multiplies the load);
    - the deadline passed before any attempt (a client timeout too short for one):
      `x-should-retry: false`, the same call would meet the same deadline;
    - else (a single attempt, e.g. `max_attempts: 1`) the SDK may retry, after the
      upstream's own `retry-after`, or the degrade policy's `retry_after_seconds`.
    """
    hints = [f.retry_after for f in failures if f.retry_after is not None]
    closed_for = _closed_for(plan)
    should_retry = call.attempts <= 1
    if closed_for is not None and closed_for > 0:
        retry_after, should_retry = closed_for, False
    elif hints:
        retry_after = max(hints)
        should_retry = should_retry and retry_after <= plan.retry.max_retry_after
    else:
        retry_after = float(plan.degrade.retry_after_seconds)
    if failures:
        last = failures[-1]
        summary = (
            f"every deployment of {plan.model!r} failed after {call.attempts} attempt(s); "
            f"last: {last.message} ({last.kind})"
        )
    elif skipped == len(plan.targets):
        summary = (
            f"every deployment of {plan.model!r} is unavailable: its circuit breaker opened "
            "after repeated upstream failures"
        )
    else:
        # Nothing was tried, and not for an open breaker: the deadline had passed already.
        should_retry = False
        summary = (
            f"no deployment of {plan.model!r} was tried: the call's deadline "
            f"({call.deadline - call.started:.2f} s, from the route's timeouts.total or the "
            "client's own timeout) passed before an attempt could start"
        )
    if skipped and skipped < len(plan.targets):
        summary += f"; {skipped} deployment(s) skipped with an open circuit"
    if closed_for is not None and closed_for > 0:
        summary += f"; the next probe is in {math.ceil(closed_for)} s"
    error_type: type[TollhouseError] = Overloaded
    if failures and all(f.kind == "rate_limit" for f in failures):
        error_type = RateLimited
    headers = {"retry-after": str(max(1, math.ceil(retry_after)))}
    if not should_retry:
        headers["x-should-retry"] = "false"
    return error_type(summary, headers=headers)


def _closed_for(plan: RoutePlan) -> float | None:
    """Seconds until the first of the route's open breakers lets a probe through; None when
    some deployment's breaker is not open."""
    now = time.monotonic()
    waits = []
    for target in plan.targets:
        if target.breaker.state != "open":
            return None
        waits.append(target.breaker.seconds_until_half_open(now))
    return min(waits)


def _static_answer(call: Call, text: str) -> Reply:
    answer = call.wire.static_answer(text, call.model, call.request_id)
    reply = replayed_answer(call, orjson.dumps(answer))
    reply.add_header("x-tollhouse-degraded", "true")
    return reply
