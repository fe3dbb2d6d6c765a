"""Counters in Redis, shared by every gateway process that points at the same server.

One round trip per `admit` and one per `settle`/`release`: each is a single EVALSHA of a
Lua script (`admit.lua`, `settle.lua`) that checks and writes everything atomically with
Redis's own clock. A server that lost its scripts (restart, SCRIPT FLUSH, failover)
answers NOSCRIPT, and the script is loaded and run again.

Layout under `prefix` (one Redis, not a cluster: the keys of one call must live on one
server, which a cluster only guarantees for a prefix holding a {hash tag}):

- `b:<key>`      bucket hash: `t` tokens (may be negative: debt), `ts` last update (µs);
                 expires when it would be full again, so an idle key costs nothing
- `c:<key>`      concurrency zset: reservation id scored by lease expiry (ms)
- `$:<key>`      budget hash: `spent` and `held` nano-USD; lives `period_ttl_seconds`
- `$held:<key>`  budget zset: "<id>:<reserve>" scored by expiry (ms); expired members are
                 purged (and `held` lowered) inside the admit script before checking;
                 lives as long as the budget hash

Nothing is retried: an EVALSHA that timed out may have run, and running it again could
take twice. Connection trouble and timeouts raise `CountersUnavailable` within about
`timeout` seconds; the connection is made again on the next call once the server is
back.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from importlib.resources import files
from typing import Any

from tollhouse.ports.counters.base import (
    Admission,
    Amounts,
    CounterStore,
    CountersUnavailable,
    Decision,
    LimitKind,
    Reservation,
)
from tollhouse.ports.redis_connection import Arg, RedisConnection, RedisUnavailable, ReplyError

ADMIT_LUA = files(__package__).joinpath("admit.lua").read_text()
SETTLE_LUA = files(__package__).joinpath("settle.lua").read_text()

# Error replies that mean "not now" rather than "wrong": a server loading its data, a
# replica promoted away under us, a cluster without its primary.
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


class RedisCounterStore(CounterStore):
    """`CounterStore` on one Redis server (`url`, e.g. "redis://127.0.0.1:6379/0").

    `timeout` bounds connecting and each reply, so an unreachable or stuck server costs a
    caller about `timeout` seconds, not a TCP timeout. One pipelined connection per store
    (`ports/redis_connection.py`) carries every call of the process.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "tollhouse:counters:",
        timeout: float = 0.5,
    ) -> None:
        self.prefix = prefix
        self._redis = RedisConnection(url, timeout=timeout)
        # Reservation ids: unique across processes by a random tag, cheaper than uuid4.
        self._id_tag = os.urandom(8).hex()
        self._ids = itertools.count(1)
        self._admit = _Script(ADMIT_LUA)
        self._settle = _Script(SETTLE_LUA)

    async def admit(self, admission: Admission, amounts: Amounts) -> Decision:
        rid = f"{self._id_tag}.{next(self._ids)}"
        buckets, leases, budgets = admission.buckets, admission.concurrency, admission.budgets
        keys = self._keys(admission)
        args: list[Any] = [
            rid,
            _ms(admission.lease_ttl_seconds),
            len(buckets),
            len(leases),
            len(budgets),
        ]
        taken = amounts.by_takes()
        for b in buckets:
            args += (b.capacity, _us(b.window_seconds), taken[b.takes])
        args += (c.limit for c in leases)
        for g in budgets:
            args += (g.limit_nanousd, amounts.reserve_nanousd, g.period_ttl_seconds)
        reply: list[int] = await self._call(self._admit, keys, args)

        admitted, refused, retry_us = reply[0], reply[1], reply[2]
        base = 3 + len(buckets) + len(leases) + len(budgets)
        remaining: list[int] = reply[3:base]
        reset_after = [us / 1e6 for us in reply[base : base + len(buckets)]]
        if admitted:
            return Decision(
                admission,
                True,
                reservation=Reservation(rid, admission, amounts),
                remaining=remaining,
                reset_after=reset_after,
            )
        kind = (
            LimitKind.BUCKET
            if refused < len(buckets)
            else LimitKind.CONCURRENCY
            if refused < len(buckets) + len(leases)
            else LimitKind.BUDGET
        )
        return Decision(
            admission,
            False,
            refused_by=admission.keys()[refused],
            refused_kind=kind,
            retry_after=retry_us / 1e6 if retry_us >= 0 else None,
            remaining=remaining,
            reset_after=reset_after,
        )

    async def settle(
        self,
        reservation: Reservation,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanousd: int | None,
    ) -> None:
        requests = reservation.amounts.requests
        cost = -1 if cost_nanousd is None else cost_nanousd
        await self._end(reservation, [requests, input_tokens, output_tokens], cost)

    async def release(self, reservation: Reservation) -> None:
        await self._end(reservation, [0, 0, 0], 0)

    async def spent(self, budget_key: str) -> int:
        value = await self._command("HGET", self.prefix + "$:" + budget_key, "spent")
        return int(value or 0)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _end(self, reservation: Reservation, actual: list[int], cost: int) -> None:
        """Give back what `reservation` took beyond `actual` (requests, input, output) and
        book `cost` (-1: the reservation) on its budgets."""
        if reservation.ended:
            return
        # Marked before the round trip: a second settle never runs the script, even while
        # the first is in flight; one that failed is not retried (the reservation expires).
        reservation.ended = True
        admission = reservation.admission
        buckets, leases, budgets = admission.buckets, admission.concurrency, admission.budgets
        keys = self._keys(admission)
        args: list[Any] = [
            reservation.id,
            len(buckets),
            len(leases),
            len(budgets),
            cost,
        ]
        amounts = reservation.amounts
        taken = amounts.by_takes()
        for b in buckets:
            args += (b.capacity, _us(b.window_seconds), taken[b.takes] - actual[b.takes])
        for g in budgets:
            args += (amounts.reserve_nanousd, g.period_ttl_seconds)
        await self._call(self._settle, keys, args)

    def _keys(self, admission: Admission) -> list[str]:
        """The Redis keys of `admission`'s limits, in the order both scripts read them."""
        p = self.prefix
        return [
            *(p + "b:" + b.key for b in admission.buckets),
            *(p + "c:" + c.key for c in admission.concurrency),
            *(p + "$:" + g.key for g in admission.budgets),
            *(p + "$held:" + g.key for g in admission.budgets),
        ]

    async def _call(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        """Run `script` by its digest; a server that lost it (restart, SCRIPT FLUSH,
        failover) answers NOSCRIPT, and EVAL runs it and loads it again."""
        reply = await self._command("EVALSHA", script.sha, len(keys), *keys, *args)
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._command("EVAL", script.source, len(keys), *keys, *args)
        if isinstance(reply, ReplyError):
            raise RuntimeError(f"Redis counter script failed: {reply}")
        return reply

    async def _command(self, *args: Arg) -> Any:
        try:
            reply = await self._redis.call(*args)
        except RedisUnavailable as error:
            raise CountersUnavailable(f"Redis unavailable: {error}") from error
        if isinstance(reply, ReplyError) and str(reply).startswith(_UNAVAILABLE_REPLIES):
            raise CountersUnavailable(f"Redis unavailable: {reply}")
        return reply


class _Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _us(seconds: float) -> int:
    return max(1, round(seconds * 1_000_000))
