"""Variant split: which of a route's variants serves a call.

Stateless and deterministic, so every gateway process, before and after a reload, puts a
caller on the same variant without sharing anything: the first sticky key the call has
(config `split.sticky`: end user, session, gateway key) is hashed (BLAKE2b) with the
route's name and `split.seed` into one of 10,000 buckets, and each variant owns a range of
buckets as wide as its weight (1 % = 100 buckets). A call with no sticky key draws a bucket
at random.

The ranges are laid out so that raising a canary's weight only moves callers from the
control into it: the control owns the lowest buckets, and the other variants, in the order
the config lists them, own ranges that end at the top (the first listed ends at 10,000,
the next one below it, and so on). A caller in the canary at 10 % (buckets 9,000-9,999) is
still in it at 50 % (5,000-9,999). With several canaries, a change to one's weight moves
the ranges of those listed after it.

A request may name its variant (`x-tollhouse-variant`) to test it, at any weight, when its
gateway key has the `variant_override` scope (any caller on an open gateway).
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tollhouse.accounting.call_record import SESSION_HEADERS
from tollhouse.call import Call
from tollhouse.config.rollout import SplitConfig, StickyKey
from tollhouse.errors import BadRequest, PermissionDenied

if TYPE_CHECKING:
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route.router import RoutePlan

BUCKETS = 10_000
OVERRIDE_HEADER = "x-tollhouse-variant"
OVERRIDE_SCOPE = "variant_override"
_KNOWN_CALLERS = 65_536


def sticky_bucket(route: str, seed: str, kind: str, value: str) -> int:
    """The bucket (0 to 9,999) of a caller known by `value` (its `kind` of sticky key)."""
    text = f"{seed}\x00{route}\x00{kind}\x00{value}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") % BUCKETS


def basis_points(weight: float) -> int:
    """A weight in percent as a number of buckets."""
    return round(weight * 100)


def sticky_value(call: Call, kind: StickyKey) -> str | None:
    """The value of sticky key `kind` that `call` carries, if any."""
    if kind == "end_user":
        return call.end_user or call.requested_end_user()
    if kind == "session":
        headers = call.headers
        for name in SESSION_HEADERS:
            value = headers.get(name)
            if value:
                return value
        return None
    return call.key_id


class VariantSplit:
    """The split of one route of one config snapshot. `plans` holds every variant's plan,
    `weights` its weight in percent, both in the config's order, the control among them."""

    def __init__(
        self,
        route: str,
        split: SplitConfig,
        control: str,
        plans: Mapping[str, RoutePlan],
        weights: Mapping[str, float],
    ) -> None:
        self.route = route
        self.control = control
        self._sticky = split.sticky
        self._seed = split.seed
        self.plans = dict(plans)
        canaries = [name for name in plans if name != control]
        # Bottom to top: the control, then the canaries from the last listed to the first.
        order = [control, *reversed(canaries)]
        self._names = order
        self._uppers: list[int] = []
        top = 0
        for name in order:
            top += basis_points(weights[name])
            self._uppers.append(top)
        self.ranges: dict[str, tuple[int, int]] = {
            name: (upper - basis_points(weights[name]), upper)
            for name, upper in zip(order, self._uppers, strict=True)
        }
        # The buckets of recent callers, per kind of sticky key: the same few thousand come
        # back call after call, and a dict lookup is cheaper than a hash of the value.
        self._known: dict[str, dict[str, int]] = {kind: {} for kind in self._sticky}

    def bucket(self, call: Call) -> int:
        """`call`'s bucket: from its first sticky key, else drawn at random."""
        for kind in self._sticky:
            value = sticky_value(call, kind)
            if value is not None:
                known = self._known[kind]
                bucket = known.get(value)
                if bucket is None:
                    if len(known) >= _KNOWN_CALLERS:
                        known.clear()
                    bucket = known[value] = sticky_bucket(self.route, self._seed, kind, value)
                return bucket
        return random.randrange(BUCKETS)

    def variant_of(self, bucket: int) -> str:
        return self._names[bisect_right(self._uppers, bucket)]

    def choose(self, call: Call, key: KeyRecord | None) -> RoutePlan:
        """The plan of the variant `call` names (when its key may name one), else of its
        bucket's."""
        named = call.headers.get(OVERRIDE_HEADER)
        if named:
            return self._named(named, key)
        return self.plans[self.variant_of(self.bucket(call))]

    def _named(self, name: str, key: KeyRecord | None) -> RoutePlan:
        if key is not None and OVERRIDE_SCOPE not in key.scopes:
            raise PermissionDenied(
                f"{OVERRIDE_HEADER}: API key {key.key_id} may not choose a variant; "
                f"grant it the {OVERRIDE_SCOPE} scope",
                param=OVERRIDE_HEADER,
            )
        plan = self.plans.get(name.strip())
        if plan is None:
            known = ", ".join(self.plans)
            raise BadRequest(
                f"{OVERRIDE_HEADER}: route {self.route!r} has no variant {name!r}; "
                f"its variants: {known}",
                param=OVERRIDE_HEADER,
            )
        return plan


def refuse_override_without_variants(call: Call) -> None:
    """A request naming a variant of a route that has none is refused, not served
    silently by the route: the test it was meant for would be wrong."""
    named = call.headers.get(OVERRIDE_HEADER)
    if named:
        raise BadRequest(
            f"{OVERRIDE_HEADER}: route {call.model!r} has no variants (asked for {named!r})",
            param=OVERRIDE_HEADER,
        )
