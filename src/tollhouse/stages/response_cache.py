"""Cache: exact-match response caching, and the stale answers graceful degradation serves.

A route opts in with `cache: {ttl_seconds, stale_seconds}`. The key is a hash of the request
as it would be sent, minus what does not change the answer (`stream`, `stream_options`,
`metadata`, `user`), in the client's format, for the route's variant and the deployments
that serve it (a config version that moves the route to another model never gets the old
model's answers), and namespaced by
the client's own key, so no tenant is ever served another's answer. Only complete answers
are stored (status 200, not truncated, not degraded); whole answers are stored, and served
to streaming clients as a replayed stream. A hit costs nothing and is marked
`x-tollhouse-cache: hit` (or `stale`).
"""

from __future__ import annotations

import hashlib
import time

import orjson

from tollhouse.call import Call
from tollhouse.ports.cache.base import CachedAnswer, ResponseStore
from tollhouse.stages.replayed_answer import replayed_answer
from tollhouse.stages.route import RoutePlan
from tollhouse.types import Reply

_VOLATILE = frozenset({"stream", "stream_options", "metadata", "user"})


class ResponseCache:
    def __init__(self, store: ResponseStore) -> None:
        self.store = store
        self.hits = 0
        self.stale_hits = 0
        self.misses = 0

    def lookup(self, call: Call, plan: RoutePlan, *, stale: bool = False) -> Reply | None:
        if plan.cache.ttl_seconds <= 0 or call.endpoint == "count_tokens":
            return None
        now = time.time()
        answer = self.store.get(cache_key(call, plan), now)
        if answer is None or (not stale and now >= answer.fresh_until):
            if not stale:
                self.misses += 1
            return None
        if stale:
            self.stale_hits += 1
        else:
            self.hits += 1
        call.cache_hit = hit = "stale" if stale else "hit"
        reply = replayed_answer(call, answer.body)
        reply.add_header("x-tollhouse-cache", hit)
        return reply

    def store_answer(self, call: Call, plan: RoutePlan, reply: Reply) -> None:
        ttl = plan.cache.ttl_seconds
        if ttl <= 0 or call.endpoint == "count_tokens" or reply.stream is not None:
            return
        if reply.status != 200 or call.truncated or call.degraded or call.cache_hit:
            return
        now = time.time()
        self.store.put(
            cache_key(call, plan),
            CachedAnswer(reply.body, now, now + ttl, now + ttl + plan.cache.stale_seconds),
        )


def cache_key(call: Call, plan: RoutePlan) -> str:
    # The gateway key's id when there is one (a rotated secret keeps its tenant's cache),
    # else whatever credential the client sent.
    namespace = (
        call.key_id or call.headers.get("x-api-key") or call.headers.get("authorization") or ""
    )
    request = {k: v for k, v in call.body.items() if k not in _VOLATILE}
    digest = hashlib.blake2b(digest_size=20)
    digest.update(hashlib.sha256(namespace.encode()).digest())
    digest.update(call.client_format.encode())
    # Variants of a route may differ only in their deployments: each keeps its own answers.
    digest.update((call.variant or "").encode())
    for target in plan.targets:
        digest.update(target.label.encode())
        digest.update(b"\0")
    digest.update(orjson.dumps(request, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
