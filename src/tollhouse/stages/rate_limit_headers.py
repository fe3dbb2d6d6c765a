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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tollhouse.errors import WireFormat
from tollhouse.ports.counters import Decision
from tollhouse.wire.rate_limit_times import go_duration, rfc3339

Header = tuple[bytes, bytes]

_ANTHROPIC_NAMES = {"rpm": "requests", "itpm": "input-tokens", "otpm": "output-tokens"}
_OPENAI_NAMES = {"rpm": "requests", "itpm": "tokens"}  # OpenAI has no output-token bucket


@dataclass(frozen=True, slots=True)
class _Group:
    """The buckets behind one family of headers, and that family's three names."""

    buckets: tuple[tuple[str, bytes, int], ...]  # (bucket key, capacity as sent, capacity)
    limit: bytes
    remaining: bytes
    reset: bytes


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    fmt: WireFormat
    # Families fed by one bucket (one scope limits that kind: the common case), ready to
    # send but for the figures: (bucket key, the whole limit header, remaining and reset
    # names). The others (several scopes, Anthropic's combined `tokens-*` over input and
    # output) pick their tightest bucket per call.
    single: tuple[tuple[str, Header, bytes, bytes], ...]
    groups: tuple[_Group, ...]

    @staticmethod
    def of(fmt: WireFormat, buckets: Sequence[tuple[str, int]]) -> HeaderPlan:
        """The plan for `buckets` ((key, capacity), keys prefixed by their kind: "rpm:",
        "itpm:", "otpm:") answered in `fmt`."""
        by_kind: dict[str, list[tuple[str, bytes, int]]] = {}
        for key, capacity in buckets:
            by_kind.setdefault(key.split(":", 1)[0], []).append(
                (key, str(capacity).encode(), capacity)
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
        reset_text = _rfc3339 if self.fmt == "anthropic" else _go_duration_after
        headers: list[Header] = []
        for key, limit_header, remaining_name, reset_name in self.single:
            remaining = remaining_of.get(key)
            if remaining is not None:
                headers += (
                    limit_header,
                    (remaining_name, b"%d" % remaining),
                    (reset_name, reset_text(now, reset_of.get(key, 0.0))),
                )
        for group in self.groups:
            tightest = _tightest(group, remaining_of)
            if tightest is not None:
                remaining, limit, key = tightest
                headers += (
                    (group.limit, limit),
                    (group.remaining, b"%d" % remaining),
                    (group.reset, reset_text(now, reset_of.get(key, 0.0))),
                )
        return headers


def _group(members: list[tuple[str, bytes, int]], pattern: str) -> _Group:
    """A family of headers named by `pattern` with "limit", "remaining", "reset" for {}."""
    return _Group(
        tuple(members),
        pattern.format("limit").encode(),
        pattern.format("remaining").encode(),
        pattern.format("reset").encode(),
    )


def _tightest(group: _Group, remaining_of: Mapping[str, int]) -> tuple[int, bytes, str] | None:
    """(remaining, limit as sent, key) of the bucket with the least headroom (the smaller
    capacity on a tie), or None when the decision has none of them."""
    best: tuple[int, int, bytes, str] | None = None
    get = remaining_of.get
    for key, limit, capacity in group.buckets:
        remaining = get(key)
        if remaining is not None and (best is None or (remaining, capacity) < best[:2]):
            best = (remaining, capacity, limit, key)
    return None if best is None else (best[0], best[2], best[3])


def _go_duration_after(_now: float, seconds: float) -> bytes:
    return go_duration(seconds).encode()


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
