"""Conversation turns in Redis: shared by every gateway process, expired by Redis itself.

A turn is a string key with its TTL; a tenant's turns are also listed in a sorted set by
expiry, which holds the tenant to its cap. A `put` runs as one script (atomic): write the
turn, drop the one it continued, forget expired entries of the list, drop the oldest turns
beyond the cap. Both keys of a tenant share a hash tag (`{tenant}`), so they live on one
node of a cluster.
"""

from __future__ import annotations

import time

from tollhouse.ports.conversations.base import ConversationStoreUnavailable
from tollhouse.ports.redis_connection import RedisConnection, RedisUnavailable, ReplyError

# KEYS: the turn, the tenant's list, the turn replaced. ARGV: document, ttl ms, expiry,
# now, cap, turn id, replaced id ("" for none), the prefix of the tenant's turn keys.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
if ARGV[7] ~= '' and ARGV[7] ~= ARGV[6] then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[2], ARGV[7])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if extra > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('DEL', ARGV[8] .. id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""


class RedisConversationStore:
    """Turns under `prefix` on the Redis server at `url`; a tenant keeps at most
    `max_per_tenant`. Every command is answered or fails within about `timeout` seconds."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tollhouse:conversations:",
        max_per_tenant: int = 10_000,
        timeout: float = 2.0,
    ) -> None:
        self.prefix = prefix
        self.max_per_tenant = max_per_tenant
        self._redis = RedisConnection(url, timeout=timeout)

    async def open(self) -> None:
        await self._call("PING")

    async def get(self, tenant: str, turn_id: str) -> bytes | None:
        value = await self._call("GET", self._turn_key(tenant, turn_id))
        return value if isinstance(value, bytes) else None

    async def put(
        self,
        tenant: str,
        turn_id: str,
        document: bytes,
        *,
        ttl: float,
        replaces: str | None = None,
    ) -> None:
        now = time.time()
        replaced = replaces or ""
        await self._call(
            "EVAL",
            _PUT,
            3,
            self._turn_key(tenant, turn_id),
            self._tenant_prefix(tenant) + "index",
            self._turn_key(tenant, replaced or turn_id),
            document,
            max(1, int(ttl * 1000)),
            repr(now + ttl),
            repr(now),
            self.max_per_tenant,
            turn_id,
            replaced,
            self._tenant_prefix(tenant) + "turn:",
        )

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _tenant_prefix(self, tenant: str) -> str:
        return f"{self.prefix}{{{tenant}}}:"

    def _turn_key(self, tenant: str, turn_id: str) -> str:
        return f"{self._tenant_prefix(tenant)}turn:{turn_id}"

    async def _call(self, *args: str | bytes | int) -> object:
        try:
            reply = await self._redis.call(*args)
        except RedisUnavailable as error:
            raise ConversationStoreUnavailable(str(error)) from error
        if isinstance(reply, ReplyError):
            raise ConversationStoreUnavailable(f"Redis refused the command: {reply}")
        return reply
