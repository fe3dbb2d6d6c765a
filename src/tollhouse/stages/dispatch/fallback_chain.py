"""The fallback chain: deployments are tried in order; open circuit breakers are skipped at
once. A deployment's failure moves the call on to the next one when the route's
`fallback_on` lists the failure's class and the deadline has not passed, and so does an
answer that escalates (`escalation`: a refused, cut or checked-out answer on a route of
candidates listed cheapest first). When nothing is left, the last answer an escalation
kept is sent, else `degrade` answers. Each move on is logged (`fallback_log`).
"""

from __future__ import annotations

import time

from tollhouse.call import Call
from tollhouse.stages.check.stream_buffer import buffer_stream, restore_stream
from tollhouse.stages.dispatch.answer_reply import kept_reply
from tollhouse.stages.dispatch.attempt import Failure
from tollhouse.stages.dispatch.deadline import call_deadline
from tollhouse.stages.dispatch.degrade import StaleLookup, degrade
from tollhouse.stages.dispatch.escalation import kept_answer
from tollhouse.stages.dispatch.fallback_log import log_fallback
from tollhouse.stages.dispatch.retry import try_deployment
from tollhouse.stages.route import RoutePlan, Target
from tollhouse.types import Reply


async def dispatch(call: Call, plan: RoutePlan, stale: StaleLookup | None = None) -> Reply:
    call.deadline = call_deadline(call, plan)
    if plan.structured_output is not None and plan.structured_output.buffers_streams:
        buffer_stream(call)
    failures: list[Failure] = []
    skipped = 0
    targets = plan.targets
    for index, target in enumerate(targets):
        if not target.breaker.allow():
            skipped += 1
            continue
        if index > 0 and (failures or skipped):
            call.fallback_used = True
            call.escalated = plan.candidates
            log_fallback(plan, target, failures[-1].kind if failures else "breaker_open")
        hedge = _next_open(targets, index) if plan.hedge_after is not None else None
        outcome = await try_deployment(call, plan, target, hedge, failures)
        if isinstance(outcome, Reply):
            return outcome
        if outcome is None:
            break
        moves_on = outcome.kind in plan.fallback_on or outcome.kind in plan.escalate_on
        if not moves_on or time.monotonic() >= call.deadline:
            break
    kept = kept_answer(call, failures)
    if kept is not None:  # no dearer candidate answered: the cheaper answer after all
        return kept_reply(call, kept)
    restore_stream(call)  # a degraded answer is replayed as the stream asked for
    return await degrade(call, plan, failures, skipped, stale)


def _next_open(targets: tuple[Target, ...], index: int) -> Target | None:
    for target in targets[index + 1 :]:
        if target.breaker.state == "closed":
            return target
    return None
