"""Escalation: on a route whose deployments are candidates listed cheapest first
(stages/route/candidates.py), a whole answer that ends in a kind the route's `escalate_on`
lists goes on to the next candidate instead of reaching the client. It is a kind of
fallback, and the fallback chain runs it (`fallback_chain.py`):

- `refusal`: the model refused (stop reason `refusal`; OpenAI `content_filter`);
- `truncation`: the answer was cut at its length limit (before the route's `truncation`
  policy acts on it);
- `check`: an answer check (stages/check) refused the answer.

A failure (an error, a timeout) falls back by `fallback_on` as on any route; on a route of
candidates, every move on to a later one counts as an escalation (`call.escalated`).

Only whole answers escalate: a stream's stop reason comes once its content has reached the
client, and nothing is retried unseen after that (a stream that fails before its content
still falls back). An answer is only moved on from when a later candidate's breaker is
not open, and it is kept: when no later candidate answers (each failed, or the deadline
passed), the client gets the last one kept, as it would have without escalation (the
answer, or the check's refusal). What each answer moved on from used goes on
`call.escalations`, for the record to price.
"""

from __future__ import annotations

from tollhouse.call import Call
from tollhouse.config.model import EscalationName
from tollhouse.errors import TollhouseError
from tollhouse.stages.dispatch.attempt import Failure
from tollhouse.stages.route import RoutePlan, Target
from tollhouse.types import Reply

_WHY = {
    "refusal": "refused to answer",
    "truncation": "was cut at its length limit",
    "check": "failed an answer check",
}


def escalation_reason(call: Call, plan: RoutePlan, target: Target) -> EscalationName | None:
    """Why `call`'s answer (its stop reason noted) from `target` goes on to the next
    candidate, or None when it stands."""
    escalate_on = plan.escalate_on
    if not escalate_on:
        return None
    reason: EscalationName | None = None
    if "refusal" in escalate_on and call.stop_reason == "refusal":
        reason = "refusal"
    elif "truncation" in escalate_on and call.truncated:
        reason = "truncation"
    return reason if reason is not None and has_next(plan, target) else None


def escalates_on_check(plan: RoutePlan, target: Target) -> bool:
    """Whether an answer from `target` that an answer check refuses goes on to the next
    candidate."""
    return "check" in plan.escalate_on and has_next(plan, target)


def has_next(plan: RoutePlan, target: Target) -> bool:
    """Whether a candidate after `target` may be tried (its breaker not open)."""
    targets = plan.targets
    try:
        later = targets[targets.index(target) + 1 :]
    except ValueError:  # a hedge's target outside the plan: nothing after it
        return False
    return any(candidate.breaker.state != "open" for candidate in later)


def escalation(
    call: Call, target: Target, reason: EscalationName, kept: Reply | TollhouseError
) -> Failure:
    """The failure that moves `call` on from `target`'s answer, keeping what the client
    gets if no later candidate answers (`kept`)."""
    call.escalations.append((target.upstream_model, reason, call.usage))
    return Failure(reason, f"{target.label}: the answer {_WHY[reason]}", target, kept=kept)


def kept_answer(call: Call, failures: list[Failure]) -> Reply | None:
    """The last answer kept by an escalation, for a chain that ended without a better one
    (its usage is the call's again, no longer an escalation's); None when none was kept.
    A check's refusal kept is raised."""
    for failure in reversed(failures):
        kept = failure.kept
        if kept is None:
            continue
        if call.escalations:
            call.escalations.pop()
        if isinstance(kept, TollhouseError):
            raise kept
        return kept
    return None
