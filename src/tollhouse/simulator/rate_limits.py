"""Per-minute rate limits, advertised on every response and enforced like a provider's.

Three token buckets (requests, input tokens, output tokens), each holding its per-minute
limit and refilling continuously at limit/60 per second. A call is admitted when a request
and its estimated input tokens are available and the output bucket is not exhausted; its
actual output tokens are taken afterwards (so the output bucket can go into debt, as a
provider's output limit is settled after the answer). A refused call gets 429 and
`retry-after`: the whole seconds until it would be admitted.

Headers, Anthropic: `anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-
{limit,remaining,reset}`, the reset an RFC 3339 instant when the bucket is full again,
`-tokens-` the more restrictive of input and output. OpenAI: `x-ratelimit-{limit,remaining,
reset}-{requests,tokens}`, the reset a duration like `6m0s` or `20ms`, tokens again the more
restrictive of input and output.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tollhouse.wire.rate_limit_times import go_duration, rfc3339

Dimension = Literal["requests", "input tokens", "output tokens"]


class _Bucket:
    __slots__ = ("level", "limit", "rate", "updated")

    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.rate = limit / 60.0
        self.level = float(limit)
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.limit, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (inf when it never fits)."""
        if amount > self.limit:
            return math.inf
        return max(0.0, (amount - self.level) / self.rate)

    @property
    def remaining(self) -> int:
        return max(0, int(self.level))

    @property
    def full_in_s(self) -> float:
        return max(0.0, (self.limit - self.level) / self.rate)


@dataclass(frozen=True, slots=True)
class Refusal:
    dimension: Dimension
    limit: int
    retry_after_s: int


class RateLimits:
    def __init__(
        self,
        requests_per_minute: int,
        input_tokens_per_minute: int,
        output_tokens_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        now = clock()
        self._requests = _Bucket(requests_per_minute, now)
        self._input = _Bucket(input_tokens_per_minute, now)
        self._output = _Bucket(output_tokens_per_minute, now)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()

    def admit(self, input_tokens: int) -> Refusal | None:
        """Take one request and its input tokens, or say why not and for how long."""
        with self._lock:
            self._refill()
            checks: tuple[tuple[Dimension, _Bucket, float], ...] = (
                ("requests", self._requests, 1.0),
                ("input tokens", self._input, float(input_tokens)),
                ("output tokens", self._output, 1.0),
            )
            for dimension, bucket, amount in checks:
                wait = bucket.wait_for(amount)
                if wait > 0:
                    retry = 60 if math.isinf(wait) else max(1, math.ceil(wait))
                    return Refusal(dimension, bucket.limit, retry)
            self._requests.level -= 1
            self._input.level -= input_tokens
        return None

    def charge_output(self, output_tokens: int) -> None:
        with self._lock:
            self._refill()
            self._output.level -= output_tokens

    def anthropic_headers(self) -> dict[str, str]:
        with self._lock:
            self._refill()
            now = self._wall_clock()
            headers: dict[str, str] = {}
            tokens = min(self._input, self._output, key=lambda b: b.remaining / b.limit)
            for name, bucket in (
                ("requests", self._requests),
                ("input-tokens", self._input),
                ("output-tokens", self._output),
                ("tokens", tokens),
            ):
                prefix = f"anthropic-ratelimit-{name}-"
                headers[prefix + "limit"] = str(bucket.limit)
                headers[prefix + "remaining"] = str(bucket.remaining)
                headers[prefix + "reset"] = rfc3339(now + bucket.full_in_s)
        return headers

    def openai_headers(self) -> dict[str, str]:
        with self._lock:
            self._refill()
            tokens = min(self._input, self._output, key=lambda b: b.remaining / b.limit)
            return {
                "x-ratelimit-limit-requests": str(self._requests.limit),
                "x-ratelimit-limit-tokens": str(tokens.limit),
                "x-ratelimit-remaining-requests": str(self._requests.remaining),
                "x-ratelimit-remaining-tokens": str(tokens.remaining),
                "x-ratelimit-reset-requests": go_duration(self._requests.full_in_s),
                "x-ratelimit-reset-tokens": go_duration(tokens.full_in_s),
            }

    def _refill(self) -> None:
        now = self._clock()
        for bucket in (self._requests, self._input, self._output):
            bucket.refill(now)
