"""A cap on calls in flight in this process: past it, answer at once with an overload error
(and `Retry-After`) rather than queueing work until latency collapses for everyone."""

from __future__ import annotations


class InFlightLimiter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.shed = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.limit:
            self.shed += 1
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1
