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
    groups: tuple[_Group, ...]
    tokens: _Group | None  # Anthropic's combined `tokens-*`: the tighter of input and output

    @staticmethod
    def of(fmt: WireFormat, buckets: Sequence[tuple[str, int]]) -> HeaderPlan:
        """The plan for `buckets` ((key, capacity), keys prefixed by their kind: "rpm:",
        "itpm:", "otpm:") answered in `fmt`."""
        by_kind: dict[str, list[tuple[str, bytes, int]]] = {}
        for key, capacity in buckets:
            by_kind.setdefault(key.split(":", 1)[0], []).append(
                (key, str(capacity).encode(), capacity)
            )
        groups: list[_Group] = []
        tokens = None
        if fmt == "anthropic":
            for kind, members in by_kind.items():
                stem = f"anthropic-ratelimit-{_ANTHROPIC_NAMES[kind]}"
                groups.append(_group(tuple(members), stem))
            token_members = by_kind.get("itpm", []) + by_kind.get("otpm", [])
            if token_members:
                tokens = _group(tuple(token_members), "anthropic-ratelimit-tokens")
        else:
            for kind, members in by_kind.items():
                name = _OPENAI_NAMES.get(kind)
                if name is not None:
                    groups.append(_openai_group(tuple(members), name))
        return HeaderPlan(fmt, tuple(groups), tokens)

    def render(self, decision: Decision, now: float) -> list[Header]:
        """The headers for `decision`, taken at wall-clock time `now`."""
        remaining_of = decision.remaining
        reset_of = decision.reset_after
        headers: list[Header] = []
        anthropic = self.fmt == "anthropic"
        for group in self.groups:
            tightest = _tightest(group, remaining_of)
            if tightest is not None:
                remaining, limit, key = tightest
                reset = reset_of.get(key, 0.0)
                headers += (
                    (group.limit, limit),
                    (group.remaining, b"%d" % remaining),
                    (
                        group.reset,
                        _rfc3339(now + reset) if anthropic else go_duration(reset).encode(),
                    ),
                )
        tokens = self.tokens
        if tokens is not None:
            tightest = _tightest(tokens, remaining_of)
            if tightest is not None:
                remaining, limit, key = tightest
                headers += (
                    (tokens.limit, limit),
                    (tokens.remaining, b"%d" % remaining),
                    (tokens.reset, _rfc3339(now + reset_of.get(key, 0.0))),
                )
        return headers


def _group(members: tuple[tuple[str, bytes, int], ...], stem: str) -> _Group:
    return _Group(
        members, f"{stem}-limit".encode(), f"{stem}-remaining".encode(), f"{stem}-reset".encode()
    )


def _openai_group(members: tuple[tuple[str, bytes, int], ...], name: str) -> _Group:
    return _Group(
        members,
        f"x-ratelimit-limit-{name}".encode(),
        f"x-ratelimit-remaining-{name}".encode(),
        f"x-ratelimit-reset-{name}".encode(),
    )


def _tightest(group: _Group, remaining_of: Mapping[str, int]) -> tuple[int, bytes, str] | None:
    """(remaining, limit as sent, key) of the bucket with the least headroom (the smaller
    capacity on a tie), or None when the decision has none of them."""
    buckets = group.buckets
    if len(buckets) == 1:  # one scope limits this: the common case, no comparing
        key, limit, _ = buckets[0]
        remaining = remaining_of.get(key)
        return None if remaining is None else (remaining, limit, key)
    best: tuple[int, int, bytes, str] | None = None
    get = remaining_of.get
    for key, limit, capacity in buckets:
        remaining = get(key)
        if remaining is not None and (best is None or (remaining, capacity) < best[:2]):
            best = (remaining, capacity, limit, key)
    return None if best is None else (best[0], best[2], best[3])


_rfc3339_cache: dict[int, bytes] = {}


def _rfc3339(moment: float) -> bytes:
    """`moment` to the second, as RFC 3339 UTC; memoised, since every call of the same
    second or two asks for the same few strings."""
    second = math.ceil(moment)
    text = _rfc3339_cache.get(second)
    if text is None:
        if len(_rfc3339_cache) > 4096:
            _rfc3339_cache.clear()
        text = _rfc3339_cache[second] = rfc3339(second).encode()
    return text
