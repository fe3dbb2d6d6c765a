"""The exact-match response cache: the stage that answers a repeated request from the
answers it stored, and stores the answers it did not have.

A route opts in with `cache: {ttl_seconds, stale_seconds}`; a client opts a call out with
`cache-control` (directives.py). For a call of a cached route, `serve`:

1. looks the request up (cache_key.py), unless the client said `no-cache`/`no-store`; a
   fresh answer is the reply, replayed as a stream when the client asked for one
   (stages/replayed_answer.py), and costs nothing: the call records the cost the stored
   answer's own call had, as the cost it avoided;
2. otherwise passes the call on (dispatch) and stores a complete answer (status 200, not
   truncated, not degraded, no larger than `max_entry_bytes`), unless the client said
   `no-store`: a whole answer at once, a stream as it ends (kept_stream.py), never
   holding up a chunk;
3. marks every answer `x-tollhouse-cache: hit | miss | stale | bypass` (bypass: the client
   asked not to be answered from the cache), errors included.

The store failing (ports/cache) never fails a call: the lookup is a miss, the answer is
not stored, and both are counted (`tollhouse_response_cache_errors`) and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from tollhouse.call import Call
from tollhouse.catalog.models import ModelCatalog
from tollhouse.errors import TollhouseError
from tollhouse.ports.cache.base import CachedAnswer, ResponseStore, ResponseStoreUnavailable
from tollhouse.stages.account import priced_usage
from tollhouse.stages.replayed_answer import replayed_answer
from tollhouse.stages.response_cache.cache_key import cache_key
from tollhouse.stages.response_cache.directives import CacheDirectives, cache_directives
from tollhouse.stages.response_cache.kept_stream import kept_stream
from tollhouse.stages.route import RoutePlan
from tollhouse.types import Reply

CACHE_HEADER = "x-tollhouse-cache"

log = logging.getLogger("tollhouse.cache")

# A failing store is logged at most once per this many seconds (every failure is counted).
_LOG_EVERY = 10.0


class ResponseCache:
    def __init__(self, store: ResponseStore, *, max_entry_bytes: int = 4 * 1024 * 1024) -> None:
        self.store = store
        self.max_entry_bytes = max_entry_bytes
        self.hits = 0
        self.stale_hits = 0
        self.misses = 0
        self.bypasses = 0
        self.stored = 0
        self.too_large = 0
        self.errors = 0
        self._logged_at = 0.0

    def applies(self, call: Call, plan: RoutePlan) -> bool:
        return plan.cache.ttl_seconds > 0 and call.endpoint != "count_tokens"

    async def serve(
        self,
        call: Call,
        plan: RoutePlan,
        catalog: ModelCatalog,
        passed_on: Callable[[], Awaitable[Reply]],
    ) -> Reply:
        """`call`'s reply: from the cache, or from `passed_on()` (and then stored)."""
        if not self.applies(call, plan):
            return await passed_on()
        directives = cache_directives(call.headers)
        key = cache_key(call, plan, directives.namespace)
        outcome = "bypass"
        if directives.lookup:
            answer = await self._get(key)
            if answer is not None and time.time() < answer.fresh_until:
                self.hits += 1
                reply = self._replay(call, answer, "hit")
                reply.add_header(CACHE_HEADER, "hit")
                return reply
            self.misses += 1
            outcome = "miss"
        else:
            self.bypasses += 1
        try:
            reply = await passed_on()
        except TollhouseError as error:
            error.headers.setdefault(CACHE_HEADER, outcome)
            raise
        if call.cache_hit == "stale":
            outcome = "stale"
        elif directives.store:
            reply = await self._keep(call, plan, catalog, key, reply)
        reply.add_header(CACHE_HEADER, outcome)
        return reply

    async def stale_answer(self, call: Call, plan: RoutePlan) -> Reply | None:
        """The stored answer to `call` even past its TTL (within `stale_seconds`), for
        graceful degradation; None when there is none, or the client asked for a fresh one."""
        if not self.applies(call, plan):
            return None
        directives = cache_directives(call.headers)
        if not directives.lookup:
            return None
        answer = await self._get(cache_key(call, plan, directives.namespace))
        if answer is None:
            return None
        self.stale_hits += 1
        return self._replay(call, answer, "stale")

    def _replay(self, call: Call, answer: CachedAnswer, kind: str) -> Reply:
        call.cache_hit = kind
        call.cache_source = answer.request_id
        call.cache_cost_avoided = None if answer.cost_usd is None else Decimal(answer.cost_usd)
        return replayed_answer(call, answer.body)

    async def _keep(
        self, call: Call, plan: RoutePlan, catalog: ModelCatalog, key: str, reply: Reply
    ) -> Reply:
        if reply.status != 200 or call.degraded:
            return reply
        if reply.stream is not None:
            store = self._storer(call, plan, catalog, key)
            reply.stream = kept_stream(call, reply.stream, self.max_entry_bytes, store)
            return reply
        if call.truncated or call.structured_output == "invalid":
            return reply
        await self._storer(call, plan, catalog, key)(reply.body)
        return reply

    def _storer(
        self, call: Call, plan: RoutePlan, catalog: ModelCatalog, key: str
    ) -> Callable[[bytes | None], Awaitable[None]]:
        """What stores `call`'s answer, given its body once complete (None: too large)."""

        async def store(body: bytes | None) -> None:
            if body is None or len(body) > self.max_entry_bytes:
                self.too_large += 1
                return
            # An answer the structured-output check let through flagged invalid is never
            # replayed: the next call gets its own chance (and its own check).
            if call.truncated or call.degraded or call.structured_output == "invalid":
                return
            cost = None
            if call.usage is not None:
                cost = priced_usage(catalog, call, call.usage)[1].total
            now = time.time()
            ttl = plan.cache.ttl_seconds
            answer = CachedAnswer(
                body,
                now,
                now + ttl,
                now + ttl + plan.cache.stale_seconds,
                None if cost is None else str(cost),
                call.request_id,
            )
            try:
                await self.store.put(key, answer)
            except ResponseStoreUnavailable as error:
                self._failed("store", error)
                return
            self.stored += 1

        return store

    async def _get(self, key: str) -> CachedAnswer | None:
        try:
            return await self.store.get(key, time.time())
        except ResponseStoreUnavailable as error:
            self._failed("lookup", error)
            return None

    def _failed(self, what: str, error: Exception) -> None:
        self.errors += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY:
            self._logged_at = now
            log.warning("response cache %s failed (served as a miss): %s", what, error)


__all__ = ["CACHE_HEADER", "CacheDirectives", "ResponseCache"]
