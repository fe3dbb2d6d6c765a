"""How the providers write the times in their rate-limit headers, for every place that
sends them (the gateway's own limits, the simulator's).

Anthropic's `anthropic-ratelimit-*-reset` is an RFC 3339 UTC instant; OpenAI's
`x-ratelimit-reset-*` is a Go-style duration (`20ms`, `1.5s`, `6m0s`, `1h2m3s`).
"""

from __future__ import annotations

import math
import time


def rfc3339(instant: float) -> str:
    """`instant` (epoch seconds), rounded up to the second, as `2026-11-30T18:45:03Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(instant)))


def go_duration(seconds: float) -> str:
    """A duration the way OpenAI's headers write it: `20ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text
