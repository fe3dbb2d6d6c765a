"""What one variant of a route did over the last window: one sample per finished call and
the quality scores posted for its calls, both bounded in time and in count."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple


class Sample(NamedTuple):
    """One finished call (a tuple: one is made per call on the request path)."""

    at: float  # time.time() when the call finished
    error: bool  # failed upstream or in the gateway (status >= 500, or 429 from upstream)
    truncated: bool
    latency: float  # seconds
    ttft: float | None  # seconds to the first streamed byte; None for a whole answer
    cost: float | None  # US dollars; None when unpriced


class ArmWindow:
    """Samples and scores of the last `seconds`, at most `max_samples` of each (the oldest
    go first), so a busy route can't grow the gateway's memory."""

    def __init__(self, seconds: float, max_samples: int = 50_000) -> None:
        self.seconds = seconds
        self.samples: deque[Sample] = deque(maxlen=max_samples)
        self.scores: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def add_score(self, at: float, score: float) -> None:
        self.scores.append((at, score))

    def prune(self, now: float) -> None:
        """Forget what is older than the window."""
        oldest = now - self.seconds
        while self.samples and self.samples[0].at < oldest:
            self.samples.popleft()
        while self.scores and self.scores[0][0] < oldest:
            self.scores.popleft()

    def clear(self) -> None:
        self.samples.clear()
        self.scores.clear()
