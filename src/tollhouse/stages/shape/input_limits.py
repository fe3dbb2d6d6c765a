"""Input limits: a request too large for its key or route is refused before any provider
sees it, and an oversized `max_tokens` is clamped or refused, as configured.

Limits come from three places (global `limits.input`, the route, the gateway key) and the
tightest of each applies, so a key can narrow what the operator allows but never widen it.
Every refusal states the limit and the request's own figure, in the client's format.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

from tollhouse.call import Call
from tollhouse.config.model import InputLimits
from tollhouse.errors import BadRequest, RequestTooLarge
from tollhouse.stages.shape.policy import RequestPolicy
from tollhouse.tokens.estimate import request_input_tokens

if TYPE_CHECKING:  # the route imports `tightest` from here
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan

NO_LIMITS = InputLimits()


def tightest(limits: Iterable[InputLimits | None]) -> InputLimits:
    """One `InputLimits` holding the smallest of each bound; `refuse` if any says so."""
    chosen = [limit for limit in limits if limit is not None and limit != NO_LIMITS]
    if not chosen:
        return NO_LIMITS
    if len(chosen) == 1:
        return chosen[0]

    def smallest(name: str) -> int | None:
        values = [getattr(limit, name) for limit in chosen if getattr(limit, name) is not None]
        return min(values) if values else None

    return InputLimits(
        max_request_bytes=smallest("max_request_bytes"),
        max_input_tokens=smallest("max_input_tokens"),
        max_messages=smallest("max_messages"),
        max_tokens_cap=smallest("max_tokens_cap"),
        max_tokens_mode=(
            "refuse" if any(limit.max_tokens_mode == "refuse" for limit in chosen) else "clamp"
        ),
    )


class InputLimitsPolicy(RequestPolicy):
    """The tightest of the route's input limits (global and per route, merged by the
    router) and the key's caps."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> None:
        limits = plan.input_limits if key is None else tightest((plan.input_limits, key.caps))
        apply_input_limits(call, limits)


def apply_input_limits(call: Call, limits: InputLimits) -> None:
    """Refuse `call` if it breaks `limits`, clamp its `max_tokens` if allowed; the input
    tokens, when they had to be estimated, are left on `call.input_estimate`."""
    if limits is NO_LIMITS:
        return
    size = len(call.raw_body)
    if limits.max_request_bytes is not None and size > limits.max_request_bytes:
        raise RequestTooLarge(
            f"request body of {size} bytes exceeds this key's limit of "
            f"{limits.max_request_bytes} bytes"
        )
    messages = call.body.get("messages") or ()
    if limits.max_messages is not None and len(messages) > limits.max_messages:
        raise BadRequest(
            f"request has {len(messages)} messages; the limit is {limits.max_messages}"
        )
    if limits.max_input_tokens is not None:
        estimate = call.input_estimate
        if estimate is None:  # no policy before counted it
            estimate = call.input_estimate = request_input_tokens(call.body)
        if estimate > limits.max_input_tokens:
            raise BadRequest(
                f"prompt is too long: an estimated {estimate} input tokens; the limit is "
                f"{limits.max_input_tokens}"
            )
    cap = limits.max_tokens_cap
    if cap is not None and call.has_output:
        field = call.wire.max_tokens_field(call.body)
        asked = call.body.get(field)
        if isinstance(asked, int) and asked > cap:
            if limits.max_tokens_mode == "refuse":
                raise BadRequest(f"{field} is {asked}; the limit is {cap}")
            call.body[field] = cap
            call.raw_body = orjson.dumps(call.body)
            call.max_tokens_clamp = ("cap", asked, cap)
        elif asked is None and call.client_format != "anthropic":
            # Chat Completions and Responses make it optional: a cap then has to be stated.
            call.body[field] = cap
            call.raw_body = orjson.dumps(call.body)
            call.max_tokens_clamp = ("cap", None, cap)
