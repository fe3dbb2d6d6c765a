"""How long to wait before the next attempt.

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"): the wait is uniform in [0, min(cap, base × 2^n)], which spreads retries of many
clients instead of synchronising them. An upstream's own `retry-after-ms` / `retry-after`
always wins: it knows when it will have room.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time


def backoff_delay(retry_number: int, base: float, cap: float) -> float:
    """The wait before retry number `retry_number` (0 for the first retry)."""
    return random.uniform(0.0, min(cap, base * (2.0**retry_number)))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The upstream's requested wait, from `retry-after-ms` or `retry-after` (seconds or an
    HTTP date); None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError, IndexError):
        return None
