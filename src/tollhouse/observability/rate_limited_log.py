"""Structured log lines that no client can turn into a flood.

Each line is one event with its fields, written `event key=value ...` (and given to
handlers as `record.tollhouse`, a dict, for JSON formatters). Per key (the event and the
fields that name what it is about: a deployment, a failure class; only configured names,
never client input, so the keys are bounded) at most one line is written per `interval`
seconds; the lines held back meanwhile are counted, and the count goes on the next line of
that key as `suppressed=N`.
"""

from __future__ import annotations

import logging
import time
from typing import Final

DEFAULT_INTERVAL: Final = 5.0


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[tuple[str, ...], float] = {}
        self._suppressed: dict[tuple[str, ...], int] = {}

    def event(
        self,
        level: int,
        event: str,
        key: tuple[str, ...],
        fields: dict[str, object],
        now: float | None = None,
    ) -> bool:
        """Log `event` with `fields` unless a line of the same `key` was written less than
        `interval` ago; whether it was written."""
        if not self.logger.isEnabledFor(level):
            return False
        now = time.monotonic() if now is None else now
        full_key = (event, *key)
        last = self._last.get(full_key)
        if last is not None and now - last < self.interval:
            self._suppressed[full_key] = self._suppressed.get(full_key, 0) + 1
            return False
        self._last[full_key] = now
        suppressed = self._suppressed.pop(full_key, 0)
        if suppressed:
            fields = {**fields, "suppressed": suppressed}
        text = " ".join(f"{name}={value}" for name, value in fields.items())
        self.logger.log(
            level, "%s %s", event, text, extra={"tollhouse": {"event": event, **fields}}
        )
        return True
