"""The interface of one request policy of the shaping step."""

from __future__ import annotations

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
    it), or raises a `TollhouseError` that answers it. A policy that counts the prompt
    leaves the count on `call.input_estimate` for the next ones and admission; one that
    changes the messages resets it to None."""

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> None:
        raise NotImplementedError


def shape_request(
    policies: tuple[RequestPolicy, ...], call: Call, plan: RoutePlan, key: KeyRecord | None
) -> None:
    """Run `call` through `policies`, in order."""
    for policy in policies:
        policy.apply(call, plan, key)
