"""The interface of a response store: whole answers by key, each fresh for its TTL and kept
a while longer stale (for graceful degradation), within the store's caps.

Contract of every implementation (`in_process.py`, `sqlite.py`, `redis.py`):
- `get(key, now)` is the answer stored under `key`, or None when there is none or it is
  past its `stale_until` (the TTL is the store's to enforce: an expired answer is never
  returned, whatever sweeping the store does or doesn't do).
- `put(key, answer)` keeps the answer until its `stale_until`, replacing what `key` held.
  An answer larger than `max_bytes` is not stored; beyond `max_entries` or `max_bytes` the
  answers nearest their end (the oldest, for a route's uniform TTL) are dropped first.
- `entries` is the number of answers the store last knew it held (for `/metrics`).
- Failures of the backing server or file are `ResponseStoreUnavailable`, within the
  store's timeout: the cache then serves the call as a miss, never fails it.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class ResponseStoreUnavailable(Exception):
    """The store's server or file can't be used right now."""


class CachedAnswer(msgspec.Struct, frozen=True, array_like=True):
    body: bytes  # the whole answer in the client's wire format
    stored_at: float  # seconds since the epoch
    fresh_until: float
    stale_until: float
    # What the call that produced it cost (exact decimal text), None when its price was
    # unknown: what a hit avoids. And that call's request id, for the record of a hit.
    cost_usd: str | None = None
    request_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.body)


encode_answer = msgspec.msgpack.Encoder().encode
decode_answer = msgspec.msgpack.Decoder(CachedAnswer).decode


class ResponseStore(Protocol):
    @property
    def entries(self) -> int: ...

    async def get(self, key: str, now: float) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer) -> None: ...

    async def aclose(self) -> None: ...
