"""Rate-limit headers as each provider sends them, from an admission decision.

A client (or the SDK it uses) that already reads Anthropic's `anthropic-ratelimit-*` or
OpenAI's `x-ratelimit-*` headers to pace itself reads the gateway's limits the same way.
Where several scopes limit the same thing (the key, its end user, the gateway), the
headers describe the tightest: the one with the least headroom left.

Every admitted call carries them, so the work is split: `HeaderPlan.of` decides once per
set of limits which buckets feed which header and encodes the names and limits;
`HeaderPlan.render` then only picks the tightest bucket of each kind and formats the
figures of this call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tollhouse.ports.counters import Decision
from tollhouse.types import Header, WireFormat
from tollhouse.wire.rate_limit_times import go_duration, rfc3339

_ANTHROPIC_NAMES = {"rpm": "requests", "itpm": "input-tokens", "otpm": "output-tokens"}
_OPENAI_NAMES = {"rpm": "requests", "itpm": "tokens"}  # OpenAI has no output-token bucket


@dataclass(frozen=True, slots=True)
class _Group:
    """The buckets behind one family of headers, and that family's three names."""

    # (position of the bucket in the admission, capacity as sent, capacity)
    buckets: tuple[tuple[int, bytes, int], ...]
    limit: bytes
    remaining: bytes
    reset: bytes


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    fmt: WireFormat
    # Families fed by one bucket (one scope limits that kind: the common case), ready to
    # send but for the figures: (bucket position, the whole limit header, remaining and
    # reset names). The others (several scopes, Anthropic's combined `tokens-*` over input
    # and output) pick their tightest bucket per call.
    single: tuple[tuple[int, Header, bytes, bytes], ...]
    groups: tuple[_Group, ...]

    @staticmethod
    def of(fmt: WireFormat, buckets: Sequence[tuple[str, int]]) -> HeaderPlan:
        """The plan for an admission's `buckets` ((key, capacity) in the admission's order,
        keys prefixed by their kind: "rpm:", "itpm:", "otpm:") answered in `fmt`."""
        by_kind: dict[str, list[tuple[int, bytes, int]]] = {}
        for position, (key, capacity) in enumerate(buckets):
            by_kind.setdefault(key.split(":", 1)[0], []).append(
                (position, str(capacity).encode(), capacity)
            )
        families: list[_Group] = []
        if fmt == "anthropic":
            for kind, members in by_kind.items():
                families.append(
                    _group(members, f"anthropic-ratelimit-{_ANTHROPIC_NAMES[kind]}-{{}}")
                )
            token_members = by_kind.get("itpm", []) + by_kind.get("otpm", [])
            if token_members:
                families.append(_group(token_members, "anthropic-ratelimit-tokens-{}"))
        else:
            for kind, members in by_kind.items():
                name = _OPENAI_NAMES.get(kind)
                if name is not None:
                    families.append(_group(members, f"x-ratelimit-{{}}-{name}"))
        single = tuple(
            (g.buckets[0][0], (g.limit, g.buckets[0][1]), g.remaining, g.reset)
            for g in families
            if len(g.buckets) == 1
        )
        several = tuple(g for g in families if len(g.buckets) > 1)
        return HeaderPlan(fmt, single, several)

    def render(self, decision: Decision, now: float) -> list[Header]:
        """The headers for `decision`, taken at wall-clock time `now`."""
        remaining_of = decision.remaining
        reset_of = decision.reset_after
        anthropic = self.fmt == "anthropic"
        headers: list[Header] = []
        for position, limit_header, remaining_name, reset_name in self.single:
            headers += (
                limit_header,
                (remaining_name, b"%d" % remaining_of[position]),
                (reset_name, _reset_text(anthropic, now, reset_of[position])),
            )
        for group in self.groups:
            remaining, limit, position = _tightest(group, remaining_of)
            headers += (
                (group.limit, limit),
                (group.remaining, b"%d" % remaining),
                (group.reset, _reset_text(anthropic, now, reset_of[position])),
            )
        return headers


def _group(members: list[tuple[int, bytes, int]], pattern: str) -> _Group:
    """A family of headers named by `pattern` with "limit", "remaining", "reset" for {}."""
    return _Group(
        tuple(members),
        pattern.format("limit").encode(),
        pattern.format("remaining").encode(),
        pattern.format("reset").encode(),
    )


def _tightest(group: _Group, remaining_of: list[int]) -> tuple[int, bytes, int]:
    """(remaining, limit as sent, position) of the bucket with the least headroom (the
    smaller capacity on a tie)."""
    best = group.buckets[0]
    least = remaining_of[best[0]]
    for member in group.buckets[1:]:
        remaining = remaining_of[member[0]]
        if remaining < least or (remaining == least and member[2] < best[2]):
            best, least = member, remaining
    return least, best[1], best[0]


def _reset_text(anthropic: bool, now: float, seconds: float) -> bytes:
    """When a bucket is full again: Anthropic sends the instant (RFC 3339), OpenAI the
    time left (a Go duration)."""
    return _rfc3339(now, seconds) if anthropic else go_duration(seconds).encode()


_rfc3339_cache: dict[int, bytes] = {}


def _rfc3339(now: float, seconds: float) -> bytes:
    """`seconds` after `now`, to the second, as RFC 3339 UTC; memoised, since every call
    of the same second or two asks for the same few strings."""
    second = math.ceil(now + seconds)
    text = _rfc3339_cache.get(second)
    if text is None:
        if len(_rfc3339_cache) > 4096:
            _rfc3339_cache.clear()
        text = _rfc3339_cache[second] = rfc3339(second).encode()
    return text
