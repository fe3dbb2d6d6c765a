"""Graceful degradation: what a client gets when every deployment of its route failed.

Never a hang and never a bare 500: either a configured static answer, served as a normal
answer in the client's format (streamed if it asked for a stream) and marked
`x-tollhouse-degraded: true`; or a clean overload error (529 for Anthropic clients, 503 for
OpenAI clients; 429 when every failure was a rate limit) with `Retry-After`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import orjson

from tollhouse.call import Call
from tollhouse.errors import Overloaded, RateLimited, TollhouseError
from tollhouse.stages.dispatch.attempt import Failure
from tollhouse.stages.replayed_answer import replayed_answer
from tollhouse.stages.route import RoutePlan
from tollhouse.types import Reply

StaleLookup = Callable[[Call, RoutePlan], Reply | None]


def degrade(
    call: Call,
    plan: RoutePlan,
    failures: list[Failure],
    skipped: int,
    stale: StaleLookup | None = None,
) -> Reply:
    call.degraded = True
    mode = plan.degrade.mode
    if mode == "stale_cache" and stale is not None:
        reply = stale(call, plan)
        if reply is not None:
            reply.add_header("x-tollhouse-degraded", "true")
            return reply
    if mode == "static" and call.endpoint != "count_tokens":
        return _static_answer(call, plan.degrade.static_text)
    raise _exhausted_error(call, plan, failures, skipped)


def _exhausted_error(
    call: Call, plan: RoutePlan, failures: list[Failure], skipped: int
) -> TollhouseError:
    waits = [f.retry_after for f in failures if f.retry_after is not None]
    retry_after = max(waits) if waits else float(plan.degrade.retry_after_seconds)
    if failures:
        last = failures[-1]
        summary = (
            f"every deployment of {plan.model!r} failed after {call.attempts} attempt(s); "
            f"last: {last.message} ({last.kind})"
        )
    else:
        summary = f"every deployment of {plan.model!r} is unavailable (circuit open)"
    if skipped and failures:
        summary += f"; {skipped} deployment(s) skipped with an open circuit"
    error_type: type[TollhouseError] = Overloaded
    if failures and all(f.kind == "rate_limit" for f in failures):
        error_type = RateLimited
    headers = {"retry-after": str(max(1, math.ceil(retry_after)))}
    if call.attempts > 1:
        # We already retried: an SDK retrying on top would multiply the load (retry storm).
        headers["x-should-retry"] = "false"
    return error_type(summary, headers=headers)


def _static_answer(call: Call, text: str) -> Reply:
    answer = call.wire.static_answer(text, call.model, call.request_id)
    reply = replayed_answer(call, orjson.dumps(answer))
    reply.add_header("x-tollhouse-degraded", "true")
    return reply
