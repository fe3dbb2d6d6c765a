"""Parameter rules: a request parameter its model refuses (the catalog's `parameter_rules`,
e.g. a non-default `temperature` on Claude Opus 4.7 and later) is dropped, refused, or
relayed, as the route's `lifecycle.parameters` says.

The rules are the deployment's, not the route's: the router puts on each target the rules
of its model (none on a route that relays). This policy applies the first deployment's
before admission: `refuse` answers 400 naming the parameter; `drop` removes it from the
request and notes it on `call.dropped_params` (the `x-tollhouse-dropped-params` reply
header and the record). A fallback to another deployment meets that deployment's rules
when its request is built (`dispatch/upstream_request.py` calls `without_rejected`): the
call was accepted already, so there they are dropped whatever the mode but `relay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.call import Call
from tollhouse.catalog.models import ParameterRule
from tollhouse.errors import BadRequest
from tollhouse.stages.shape.policy import RequestPolicy

if TYPE_CHECKING:
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan


def rejected_parameters(rules: tuple[ParameterRule, ...], body: Mapping[str, Any]) -> list[str]:
    """The names of `body`'s parameters that `rules` refuse: set (not null) and not at
    the rule's default."""
    rejected = []
    for rule in rules:
        value = body.get(rule.name)
        if value is not None and (rule.default is None or value != rule.default):
            rejected.append(rule.name)
    return rejected


def without_rejected(
    call: Call, rules: tuple[ParameterRule, ...], body: dict[str, Any]
) -> dict[str, Any]:
    """`body` without the parameters `rules` refuse (itself when there are none), each
    dropped one noted on `call.dropped_params`."""
    rejected = rejected_parameters(rules, body)
    if not rejected:
        return body
    call.dropped_params = (
        *call.dropped_params,
        *(name for name in rejected if name not in call.dropped_params),
    )
    return {name: value for name, value in body.items() if name not in rejected}


class ParameterRulesPolicy(RequestPolicy):
    """The first deployment's parameter rules, as the route treats them."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> None:
        target = plan.targets[0]
        rules = target.parameter_rules
        if not rules:
            return
        if plan.parameters == "refuse":
            rejected = rejected_parameters(rules, call.body)
            if rejected:
                name = rejected[0]
                raise BadRequest(
                    f"{name}: {target.upstream_model} does not accept {name}="
                    f"{orjson.dumps(call.body[name]).decode()}; leave it unset"
                    + _default_hint(rules, name),
                    param=name,
                )
            return
        body = without_rejected(call, rules, call.body)
        if body is not call.body:
            call.body = body
            call.raw_body = orjson.dumps(body)


def _default_hint(rules: tuple[ParameterRule, ...], name: str) -> str:
    for rule in rules:
        if rule.name == name and rule.default is not None:
            return f" or at its default {rule.default:g}"
    return ""
