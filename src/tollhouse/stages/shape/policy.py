"""The interface of one request policy of the shaping step."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollhouse.call import Call
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan


class RequestPolicy:
    """One step of request shaping. A base class rather than a Protocol: compiled, the
    shaping loop then makes a native call per policy.

    `apply` sees the call after routing (`plan`) and authentication (`key`, None on an open
    gateway) and either lets it through, possibly adjusted (its body, and `raw_body` with
    it), or raises a `TollhouseError` that answers it. A policy that has to wait for
    something (a moderation endpoint) returns the awaitable that finishes it, which
    raises as `apply` would; the others return None. A policy that counts the prompt
    leaves the count on `call.input_estimate` for the next ones and admission; one that
    changes the messages resets it to None (or leaves its new count)."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> Awaitable[None] | None:
        raise NotImplementedError


def shape_request(
    policies: tuple[RequestPolicy, ...], call: Call, plan: RoutePlan, key: KeyRecord | None
) -> Awaitable[None] | None:
    """Run `call` through `policies`, in order. None when all of them are done; else an
    awaitable that finishes the one that waits, then runs the rest."""
    for index, policy in enumerate(policies):
        waiting = policy.apply(call, plan, key)
        if waiting is not None:
            return _after(waiting, policies[index + 1 :], call, plan, key)
    return None


async def _after(
    waiting: Awaitable[None],
    rest: tuple[RequestPolicy, ...],
    call: Call,
    plan: RoutePlan,
    key: KeyRecord | None,
) -> None:
    await waiting
    more = shape_request(rest, call, plan, key)
    if more is not None:
        await more
