"""Variant request: the first shaping policy. A call routed to a variant that changes the
request (its system prompt, tools, parameters or prompt-cache breakpoints; config
`models.<route>.variants.<name>`) gets those changes here, before any other policy counts
or bounds it, so that limits, admission and the cache all see the request as it is sent.

A call whose plan changes nothing (a route without variants, the control as configured)
pays one attribute read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.call import Call
from tollhouse.config.model import Variant
from tollhouse.stages.shape.policy import RequestPolicy
from tollhouse.wire.request_edits import SystemMode

if TYPE_CHECKING:
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan


@dataclass(frozen=True, slots=True)
class VariantEdits:
    """What a variant changes in each of its calls' requests."""

    system: tuple[SystemMode, str] | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    cache_control: tuple[str, ...] = ()

    @classmethod
    def of(cls, variant: Variant) -> VariantEdits | None:
        """The edits `variant` makes; None when it leaves the request alone."""
        edits = cls(
            system=(variant.system.mode, variant.system.text) if variant.system else None,
            tools=variant.tools,
            parameters=dict(variant.parameters),
            cache_control=variant.cache_control,
        )
        return None if edits == cls() else edits

    def applied(self, call: Call) -> dict[str, Any]:
        """`call`'s body with these edits, as a new document."""
        wire = call.wire
        body = dict(call.body)
        if self.system is not None:
            body = wire.with_system(body, *self.system)
        if self.tools is not None:
            body = wire.with_tools(body, self.tools)
        for name, value in self.parameters.items():
            body[wire.max_tokens_field(body) if name == "max_tokens" else name] = value
        if self.cache_control:
            body = wire.with_cache_breakpoints(body, self.cache_control)
        return body


class VariantRequestPolicy(RequestPolicy):
    """The variant's changes to the request, when its plan has any."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> None:
        edits = plan.edits
        if edits is None:
            return
        call.body = edits.applied(call)
        call.raw_body = orjson.dumps(call.body)
        call.input_estimate = None
