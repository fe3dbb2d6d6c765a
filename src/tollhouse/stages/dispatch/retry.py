"""Retries at one deployment.

On a retryable failure (see `reliability.failure_class`) the same deployment is tried again
after a backoff with full jitter, or after the upstream's `retry-after` when it gave one, up
to `retry.max_attempts`. No wait is taken that would pass the call's deadline. A client
error is relayed at once. An answer the answer checks send back (see `stages.check`) gets
one more attempt, on top of the retries.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from tollhouse.call import Call
from tollhouse.reliability.backoff import backoff_delay
from tollhouse.reliability.failure_class import RETRYABLE
from tollhouse.stages.dispatch.answer_reply import answer_reply, error_reply
from tollhouse.stages.dispatch.attempt import Answer, Failure, attempt
from tollhouse.stages.dispatch.breaker_blame import record_failure
from tollhouse.stages.dispatch.hedge import hedged_attempt
from tollhouse.stages.route import RoutePlan, Target
from tollhouse.types import Reply


async def try_deployment(
    call: Call,
    plan: RoutePlan,
    target: Target,
    hedge: Target | None,
    failures: list[Failure],
) -> Reply | Failure | None:
    """Attempts at one deployment. A Reply ends the call; a Failure may move it on to the
    next deployment; None means the deadline has passed."""
    retry = plan.retry
    checked_again = False
    allowed = retry.max_attempts
    for number in itertools.count():
        if number >= allowed:
            break
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            return None
        first_byte = min(plan.timeouts.first_byte, remaining)
        if hedge is not None and number == 0:
            outcome = await hedged_attempt(call, target, hedge, plan, first_byte)
        else:
            call.attempts += 1
            outcome = await attempt(call, target, first_byte, plan.timeouts.read_idle)
        if isinstance(outcome, Answer):
            outcome.target.breaker.record_success()
            reply = await answer_reply(call, plan, outcome, checked_again)
            if isinstance(reply, Failure):  # the answer escalates to the next candidate
                failures.append(reply)
                return reply
            if reply is not None:
                return reply
            checked_again = True
            allowed += 1
            continue
        failure = outcome
        failures.append(failure)
        call.failures.append((failure.target.label, failure.kind))
        record_failure(call, plan, failure)
        if failure.kind == "client_error":
            return error_reply(call, failure)
        if failure.kind == "context_window":
            if "context_window" not in plan.fallback_on:
                return error_reply(call, failure)
            return failure
        if failure.kind not in RETRYABLE or number + 1 >= allowed:
            return failure
        if not target.breaker.allow():
            return failure
        wait = failure.retry_after
        if wait is None:
            wait = backoff_delay(number, retry.base_delay, retry.max_delay)
        elif wait > retry.max_retry_after:
            return failure
        if time.monotonic() + wait >= call.deadline:
            return failure
        await asyncio.sleep(wait)
    return failures[-1] if failures else None
