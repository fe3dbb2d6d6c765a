"""What kind of failure an upstream attempt ended in, which decides retry and fallback.

| class          | from                                   | retried | breaker |
|----------------|----------------------------------------|---------|---------|
| rate_limit     | 429                                    | yes     | yes     |
| overloaded     | 529, 503                               | yes     | yes     |
| server_error   | 500, 502, 504, other 5xx, 409 (lock)   | yes     | yes     |
| timeout        | 408, no first byte in time, silence    | yes     | yes     |
| connection     | refused, reset, broken before any byte | yes     | yes     |
| context_window | 400 saying the prompt is too long      | no      | no      |
| client_error   | other 4xx: the request itself is wrong | no      | no      |

A client error is the caller's to fix; retrying or falling back would only repeat it, so it
is relayed at once (except a context-window overflow, which a larger-context model may take).
"""

from __future__ import annotations

from typing import Literal

from tollhouse.config.model import FailureName

# The classes a route may fall back on, plus the one it never does.
FailureClass = FailureName | Literal["client_error"]

RETRYABLE: frozenset[str] = frozenset(
    {"rate_limit", "overloaded", "server_error", "timeout", "connection"}
)

_CONTEXT_WINDOW_MARKERS = (
    b"prompt is too long",
    b"context_length_exceeded",
    b"maximum context length",
    b"context window",
    b"too many tokens",
)


def classify_status(status: int, body: bytes) -> FailureClass:
    if status == 429:
        return "rate_limit"
    if status in (529, 503):
        return "overloaded"
    if status == 408:
        return "timeout"
    if status >= 500 or status == 409:
        return "server_error"
    lowered = body[:4096].lower()
    if status in (400, 413) and any(marker in lowered for marker in _CONTEXT_WINDOW_MARKERS):
        return "context_window"
    return "client_error"
