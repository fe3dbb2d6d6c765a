"""Rate-limit headers as each provider sends them, from an admission decision.

A client (or the SDK it uses) that already reads Anthropic's `anthropic-ratelimit-*` or
OpenAI's `x-ratelimit-*` headers to pace itself reads the gateway's limits the same way.
Where several scopes limit the same thing (the key, its end user, the gateway), the
headers describe the tightest: the one with the least headroom left.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from tollhouse.errors import WireFormat
from tollhouse.ports.counters import Admission, Decision

_ANTHROPIC_NAMES = {"rpm": "requests", "itpm": "input-tokens", "otpm": "output-tokens"}
_OPENAI_NAMES = {"rpm": "requests", "itpm": "tokens"}


def rate_limit_headers(fmt: WireFormat, admission: Admission, decision: Decision) -> dict[str, str]:
    tightest: dict[str, tuple[int, int, float]] = {}  # kind -> (remaining, limit, reset)
    for bucket in admission.buckets:
        kind = bucket.key.split(":", 1)[0]
        remaining = decision.remaining.get(bucket.key)
        if remaining is None:
            continue
        reset = decision.reset_after.get(bucket.key, 0.0)
        known = tightest.get(kind)
        if known is None or (remaining, bucket.capacity) < known[:2]:
            tightest[kind] = (remaining, bucket.capacity, reset)
    headers: dict[str, str] = {}
    if fmt == "anthropic":
        now = time.time()
        for kind, (remaining, limit, reset) in tightest.items():
            name = _ANTHROPIC_NAMES[kind]
            headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
            headers[f"anthropic-ratelimit-{name}-reset"] = _rfc3339(now + reset)
        tokens = [tightest[kind] for kind in ("itpm", "otpm") if kind in tightest]
        if tokens:
            remaining, limit, reset = min(tokens)
            headers["anthropic-ratelimit-tokens-limit"] = str(limit)
            headers["anthropic-ratelimit-tokens-remaining"] = str(remaining)
            headers["anthropic-ratelimit-tokens-reset"] = _rfc3339(now + reset)
        return headers
    for kind, (remaining, limit, reset) in tightest.items():
        openai_name = _OPENAI_NAMES.get(kind)
        if openai_name is None:
            continue  # OpenAI's headers have no separate output-token bucket
        name = openai_name
        headers[f"x-ratelimit-limit-{name}"] = str(limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(remaining)
        headers[f"x-ratelimit-reset-{name}"] = _duration(reset)
    return headers


_rfc3339_cache: dict[int, str] = {}


def _rfc3339(moment: float) -> str:
    """`moment` to the second, as RFC 3339 UTC; memoised, since every call of the same
    second or two asks for the same few strings."""
    second = math.ceil(moment)
    text = _rfc3339_cache.get(second)
    if text is None:
        if len(_rfc3339_cache) > 4096:
            _rfc3339_cache.clear()
        text = _rfc3339_cache[second] = datetime.fromtimestamp(second, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    return text


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `1h2m3s`, `250ms`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
