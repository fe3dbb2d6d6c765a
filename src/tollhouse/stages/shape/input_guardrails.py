"""Input guardrails: the route's checks on the call's text (moderation, patterns,
deny-lists, length, language), after the input limits and before admission, so that a
refused call reserves no budget and reaches no model (stages/shape/guardrails/).

A route without guardrails pays one attribute read; one with them makes shaping wait
(the policy returns the awaitable of `guard_input`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from tollhouse.call import Call
from tollhouse.stages.shape.guardrails.runner import guard_input
from tollhouse.stages.shape.policy import RequestPolicy

if TYPE_CHECKING:
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan


class InputGuardrailsPolicy(RequestPolicy):
    """The route's input guardrails, in the order it lists them."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> Awaitable[None] | None:
        guardrails = plan.input_guardrails
        if not guardrails:
            return None
        return guard_input(guardrails, call)
