"""What the request path asks about a gateway key: is this secret good, and may it use
this model.

`KeyRing.authenticate` keeps what the store said about a secret in memory, so a hot key
costs no database round trip per request. The price is staleness: a revocation, rotation
or update made through another process (or straight in the database) takes effect here
within `ttl` seconds (5 by default). Expiry and a rotation's grace period don't wait: they
are checked against the clock on every request, cached record or not. `forget(key_id)`
drops a key at once, for changes made through this process.

Unknown secrets are cached too (briefly, `negative_ttl`), so a client retrying a bad key
in a loop doesn't hit the database each time. The two caches have separate bounds: a flood
of random keys can only evict other unknown keys, never a real key a customer is using.
The caches are keyed by the secret's hash, so the plaintext is not kept in memory.
Requests that present the same uncached secret at once share one store lookup.

A store failure propagates as the store raised it (`KeyStoreUnavailable`): an outage must
not look like a bad key to the client.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import TypeVar

from tollhouse.errors import AuthError, PermissionDenied
from tollhouse.ports.keys.base import KeyStore
from tollhouse.ports.keys.record import KeyRecord, hash_secret

V = TypeVar("V")

_NO_KEY = "missing API key: send it as `x-api-key` or `Authorization: Bearer`"


class KeyRing:
    def __init__(
        self,
        store: KeyStore,
        *,
        ttl: float = 5.0,
        negative_ttl: float = 1.0,
        max_keys: int = 10_000,
        max_unknown: int = 1_000,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_keys = max_keys
        self.max_unknown = max_unknown
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        # digest -> (cached until, monotonic; record; this secret accepted until, wall clock)
        self._known: OrderedDict[str, tuple[float, KeyRecord, float]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._fetching: dict[str, asyncio.Task[KeyRecord | None]] = {}  # lookups under way

    async def authenticate(self, secret: str | None) -> KeyRecord:
        """The key `secret` belongs to, if it accepts it now; else `AuthError` (401) saying
        why (unknown, revoked, expired, rotated out), never echoing the secret."""
        if not secret:
            raise AuthError(_NO_KEY)
        digest = hash_secret(secret)
        known = self._known.get(digest)
        if known is not None and self._monotonic() < known[0] and self._wall_clock() < known[2]:
            self._known.move_to_end(digest)
            return known[1]
        record = await self._lookup(digest, secret)
        if record is None:
            raise AuthError("invalid API key")
        now = datetime.fromtimestamp(self._wall_clock(), UTC)
        refusal = record.refusal(digest, now)
        if refusal is not None:
            raise AuthError(refusal)
        # The next requests within the TTL compare one number instead of the record.
        end = record.accepted_until(digest)
        until = math.inf if end is None else end.timestamp()
        cached = self._known.get(digest)
        if cached is not None and cached[1] is record:
            self._known[digest] = (cached[0], record, until)
        return record

    def forget(self, key_id: str) -> None:
        """Drop what is cached about `key_id`, so a change made through this process
        applies to the next request rather than after the TTL."""
        for digest in [d for d, (_, record, _) in self._known.items() if record.key_id == key_id]:
            del self._known[digest]

    async def _lookup(self, digest: str, secret: str) -> KeyRecord | None:
        now = self._monotonic()
        known = self._known.get(digest)
        if known is not None and now < known[0]:
            return known[1]
        unknown_until = self._unknown.get(digest)
        if unknown_until is not None and now < unknown_until:
            return None
        # Requests that arrive with the same secret while it is being looked up (a client
        # opening with a burst) share that one lookup instead of each asking the store.
        fetching = self._fetching.get(digest)
        if fetching is None:
            fetching = asyncio.get_running_loop().create_task(self._fetch(digest, secret))
            self._fetching[digest] = fetching
            fetching.add_done_callback(lambda done: self._fetched(digest, done))
        return await asyncio.shield(fetching)

    def _fetched(self, digest: str, done: asyncio.Task[KeyRecord | None]) -> None:
        if self._fetching.get(digest) is done:
            del self._fetching[digest]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone away

    async def _fetch(self, digest: str, secret: str) -> KeyRecord | None:
        record = await self.store.find_by_secret(secret)
        now = self._monotonic()
        if record is None:
            self._known.pop(digest, None)
            _put(self._unknown, digest, now + self.negative_ttl, self.max_unknown)
        else:
            self._unknown.pop(digest, None)
            _put(self._known, digest, (now + self.ttl, record, -math.inf), self.max_keys)
        return record


def _put(cache: OrderedDict[str, V], digest: str, value: V, bound: int) -> None:
    cache[digest] = value
    cache.move_to_end(digest)
    while len(cache) > bound:
        cache.popitem(last=False)


def check_model(record: KeyRecord, model: str) -> None:
    """`PermissionDenied` (403) unless the key's scopes allow `model`: a name or a glob
    (`claude-*`) of `allowed_models` matches it, or the list is empty (every model)."""
    if not record.allowed_models:
        return
    if any(fnmatchcase(model, pattern) for pattern in record.allowed_models):
        return
    allowed = ", ".join(record.allowed_models)
    raise PermissionDenied(
        f"API key {record.key_id} may not use model {model!r} (allowed: {allowed})",
        param="model",
    )
