"""Answers in Redis: one cache shared by every gateway process that points at the server.

Layout under `prefix` (one Redis server, as for the counters):

- `a:<key>`  the encoded `CachedAnswer`, expiring by itself at its `stale_until` (`PX`)
- `expiry`   zset of keys scored by `stale_until` (ms): the order answers are dropped in
- `sizes`    hash of key → size in bytes, and `bytes` their total: the byte cap

A `put` is one script (atomic): forget answers Redis already expired, replace the key's
answer, then drop the answers nearest their end while either cap is exceeded. A `get` is one
GET: Redis's own expiry enforces the TTL, with no sweep needed for correctness.
"""

from __future__ import annotations

from tollhouse.ports.cache.base import (
    CachedAnswer,
    ResponseStoreUnavailable,
    decode_answer,
    encode_answer,
)
from tollhouse.ports.redis_connection import RedisConnection, RedisUnavailable, ReplyError

# KEYS: the answer, expiry zset, sizes hash, bytes total. ARGV: encoded answer, ttl ms,
# stale_until ms, now ms, size, max entries, max bytes, key, the prefix of answer keys.
_PUT = """
local function forget(id)
  local size = redis.call('HGET', KEYS[3], id)
  if size then
    redis.call('DECRBY', KEYS[4], size)
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('ZREM', KEYS[2], id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)) do
  forget(id)
  redis.call('DEL', ARGV[9] .. id)
end
forget(ARGV[8])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[8])
redis.call('HSET', KEYS[3], ARGV[8], ARGV[5])
local total = redis.call('INCRBY', KEYS[4], ARGV[5])
local count = redis.call('ZCARD', KEYS[2])
while count > 0 and (count > tonumber(ARGV[6]) or total > tonumber(ARGV[7])) do
  local id = redis.call('ZPOPMIN', KEYS[2])[1]
  local size = redis.call('HGET', KEYS[3], id) or 0
  redis.call('HDEL', KEYS[3], id)
  total = redis.call('DECRBY', KEYS[4], size)
  redis.call('DEL', ARGV[9] .. id)
  count = count - 1
end
return count
"""


class RedisResponseStore:
    """Answers under `prefix` on the Redis server at `url`, at most `max_entries` and
    `max_bytes` across every process sharing it. Every command is answered or fails
    within about `timeout` seconds."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tollhouse:cache:",
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        timeout: float = 0.25,
    ) -> None:
        self.prefix = prefix
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries = 0
        self._redis = RedisConnection(url, timeout=timeout)

    @property
    def entries(self) -> int:
        return self._entries

    async def get(self, key: str, now: float) -> CachedAnswer | None:
        value = await self._call("GET", self.prefix + "a:" + key)
        if not isinstance(value, bytes):
            return None
        answer = decode_answer(value)
        return answer if now < answer.stale_until else None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        if answer.size > self.max_bytes:
            return
        ttl_ms = int((answer.stale_until - answer.stored_at) * 1000)
        if ttl_ms <= 0:
            return
        prefix = self.prefix
        count = await self._call(
            "EVAL",
            _PUT,
            4,
            prefix + "a:" + key,
            prefix + "expiry",
            prefix + "sizes",
            prefix + "bytes",
            encode_answer(answer),
            ttl_ms,
            int(answer.stale_until * 1000),
            int(answer.stored_at * 1000),
            answer.size,
            self.max_entries,
            self.max_bytes,
            key,
            prefix + "a:",
        )
        if isinstance(count, int):
            self._entries = count

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, *args: str | bytes | int) -> object:
        try:
            reply = await self._redis.call(*args)
        except RedisUnavailable as error:
            raise ResponseStoreUnavailable(str(error)) from error
        if isinstance(reply, ReplyError):
            raise ResponseStoreUnavailable(f"Redis refused the command: {reply}")
        return reply
