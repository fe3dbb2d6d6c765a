"""Untrusted content: the texts a route marks as untrusted (tool results, documents,
message positions, the request's `x-tollhouse-untrusted` header) wrapped in delimited
blocks kept apart from the system instructions, with known prompt-injection patterns
recorded (stages/shape/guardrails/untrusted.py).

A route without `untrusted` pays one attribute read.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from tollhouse.call import Call
from tollhouse.stages.shape.guardrails.untrusted import mark_untrusted
from tollhouse.stages.shape.policy import RequestPolicy

if TYPE_CHECKING:
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan


class UntrustedContentPolicy(RequestPolicy):
    """The route's untrusted-content marking, when it has one."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> Awaitable[None] | None:
        policy = plan.untrusted
        if policy is not None:
            mark_untrusted(call, policy)
        return None
