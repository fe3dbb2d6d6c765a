"""Candidates: a route whose deployments are listed cheapest first, with rules saying when
a call needs a dearer one (config `models.<route>.deployments[].when`).

After the lifecycle check (which may leave a retired fallback out), a call starts at the
dearest candidate whose rule holds, or at the first (the cheapest) when none does; the
candidates after it stay its chain, to escalate to when an answer is refused, cut or fails
a check (`escalate_on`, stages/dispatch/escalation.py) or a deployment fails
(`fallback_on`, as any fallback). The call says which rule chose (`call.route_rule`: the
condition's name, `default` when none held) for the reply's header and the record.

A rule holds when any of its conditions does, looked at in this order (the first that
holds names the choice): `tool_present`, `input_tokens_above` (the estimate the input limits
use, left on `call.input_estimate`), `last_user_matches`, `classifier`. The classifier is a
function of the last user turn's text, imported once when the route is built; it runs on
the serving loop, so it must be quick and must not block.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tollhouse.call import Call
from tollhouse.config.candidate_rules import Classifier, rule_parts
from tollhouse.config.model import CandidateRule, Deployment
from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.tokens.estimate import request_input_tokens

if TYPE_CHECKING:
    from tollhouse.stages.route.router import RoutePlan

DEFAULT_RULE = "default"
_log = RateLimitedLog(logging.getLogger("tollhouse.route"))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A `CandidateRule` ready to test calls against."""

    tool_present: bool | str | None
    input_tokens_above: int | None
    last_user_matches: re.Pattern[str] | None
    classifier: Classifier | None

    def holds(self, call: Call) -> str | None:
        """The name of the first condition that holds for `call`, or None."""
        wire = call.wire
        if self.tool_present is not None and self.tool_present is not False:
            names = wire.tool_names(call.body)
            if names and (self.tool_present is True or self.tool_present in names):
                return "tool_present"
        if self.input_tokens_above is not None:
            estimate = call.input_estimate
            if estimate is None:
                estimate = call.input_estimate = request_input_tokens(call.body)
            if estimate > self.input_tokens_above:
                return "input_tokens_above"
        if self.last_user_matches is None and self.classifier is None:
            return None
        text = wire.latest_user_text(call.body)
        if self.last_user_matches is not None and self.last_user_matches.search(text):
            return "last_user_matches"
        if self.classifier is not None and _classified_hard(self.classifier, text):
            return "classifier"
        return None


def _classified_hard(classifier: Classifier, text: str) -> bool:
    try:
        return bool(classifier(text))
    except Exception as exc:  # the operator's code: a failure must not fail the call
        _log.event(
            logging.WARNING,
            "classifier_failed",
            (getattr(classifier, "__qualname__", "?"),),
            {"error": repr(exc)[:200]},
        )
        return False


def compile_rule(rule: CandidateRule) -> CompiledRule:
    """`rule` compiled (it was checked when the config loaded: `check_candidates`)."""
    pattern, classifier = rule_parts(rule)
    return CompiledRule(rule.tool_present, rule.input_tokens_above, pattern, classifier)


class CandidateChoice:
    """The rules of a route's candidates that have one, dearest first, by deployment."""

    def __init__(self, deployments: tuple[Deployment, ...]) -> None:
        self._rules = [
            (f"{deployment.provider}/{deployment.model}", compile_rule(deployment.when))
            for deployment in reversed(deployments)
            if deployment.when is not None
        ]

    def choose(self, call: Call, plan: RoutePlan) -> RoutePlan:
        """The plan `call` starts on: `plan` from the dearest candidate whose rule holds
        (one the lifecycle check left out is passed over), else `plan`; the rule that
        chose goes on `call.route_rule`."""
        targets = plan.targets
        for label, rule in self._rules:
            name = rule.holds(call)
            if name is None:
                continue
            for index, target in enumerate(targets):
                if target.label == label:
                    call.route_rule = name
                    return replace(plan, targets=targets[index:], choice=None)
        call.route_rule = DEFAULT_RULE
        return plan


def choose_candidate(call: Call, plan: RoutePlan) -> RoutePlan:
    """The plan `call` starts on, for a `plan` as the lifecycle check leaves it: on a route
    of candidates, from the one its rules choose (see the module's docstring)."""
    if plan.choice is not None:
        return plan.choice.choose(call, plan)
    if plan.candidates:
        call.route_rule = DEFAULT_RULE
    return plan
