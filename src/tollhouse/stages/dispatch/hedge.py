"""Hedging: when the first deployment's answer is slow to start, also try the next one."""

from __future__ import annotations

import asyncio
import contextlib

from tollhouse.call import Call
from tollhouse.stages.dispatch.attempt import Answer, Failure, attempt
from tollhouse.stages.dispatch.breaker_blame import record_failure
from tollhouse.stages.dispatch.fallback_log import log_fallback
from tollhouse.stages.route import RoutePlan, Target


async def hedged_attempt(
    call: Call,
    primary: Target,
    secondary: Target,
    plan: RoutePlan,
    first_byte: float,
) -> Answer | Failure:
    """Start on `primary`; if its answer has not started after `hedge_after`, also try
    `secondary`. The first answer to start wins and the other attempt is cancelled."""
    assert plan.hedge_after is not None
    call.attempts += 1
    first: asyncio.Future[Answer | Failure] = asyncio.ensure_future(
        attempt(call, primary, first_byte, plan.timeouts.read_idle)
    )
    done, _ = await asyncio.wait({first}, timeout=plan.hedge_after)
    if done:
        return first.result()
    call.attempts += 1
    second = asyncio.ensure_future(attempt(call, secondary, first_byte, plan.timeouts.read_idle))
    pending: set[asyncio.Future[Answer | Failure]] = {first, second}
    result: Answer | Failure | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            outcomes = [task.result() for task in done]
            answers = [o for o in outcomes if isinstance(o, Answer)]
            if answers:
                winner = answers[0]
                for loser in answers[1:]:  # both started in the same instant
                    await loser.response.aclose()
                if winner.target is secondary:
                    call.fallback_used = True
                    log_fallback(plan, secondary, "slow")
                return winner
            for outcome in outcomes:
                assert isinstance(outcome, Failure)  # an answer has returned above
                if outcome.target is secondary:
                    record_failure(call, plan, outcome)
                result = outcome if outcome.target is primary or result is None else result
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                late = await task
                if isinstance(late, Answer):
                    await late.response.aclose()
    assert result is not None
    return result
