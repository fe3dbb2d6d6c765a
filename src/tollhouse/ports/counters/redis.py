"""Counters in Redis, shared by every gateway process that points at the same server.

One round trip per `admit` and one per `settle`/`release`: each is a single EVALSHA of a
Lua script (`admit.lua`, `settle.lua`) that checks and writes everything atomically with
Redis's own clock; and, every third of a lease, one `renew.lua` for all the calls of the
process still running. A server that lost its scripts (restart, SCRIPT FLUSH, failover)
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
- `o:<tag>`      zset of this process's reservations not yet ended, scored by when to
                 forget one never settled: what makes a settle idempotent

A Redis stall must not lock keys out. Leases and budget holds live `lease_seconds`
(short), renewed while their call runs (`renew.lua`), so capacity a call never gave back
(its process died, its settle never landed) returns within one lease, not after the
longest call could last. A settle that fails (`CountersUnavailable`) is queued and retried
in order, with backoff, until it lands, for up to `SETTLE_RETRY_SECONDS`; a settle is
idempotent on the reservation id (only the run that takes the id out of `o:<tag>` does
anything), so a retry of one that ran but whose reply was lost books nothing twice.
Admissions are not retried: one that timed out may have run, and then holds its lease
and hold for one lease at most. Connection trouble and timeouts raise `CountersUnavailable`
within about `timeout` seconds; the connection is made again on the next call once the
server is back.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import logging
import os
import time
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
RENEW_LUA = files(__package__).joinpath("renew.lua").read_text()

log = logging.getLogger("tollhouse.counters")

LEASE_SECONDS = 6.0  # a lease's life past its last renewal
SETTLE_RETRY_SECONDS = 600.0  # a failed settle is retried this long, then given up
MAX_PENDING_SETTLES = 100_000  # past this, the oldest queued settle is given up
_RETRY_FIRST_DELAY, _RETRY_MAX_DELAY = 0.05, 1.0

# Error replies that mean "not now" rather than "wrong": a server loading its data, a
# replica promoted away under us, a cluster without its primary.
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


class RedisCounterStore(CounterStore):
    """`CounterStore` on one Redis server (`url`, e.g. "redis://127.0.0.1:6379/0").

    `timeout` bounds connecting and each reply, so an unreachable or stuck server costs a
    caller about `timeout` seconds, not a TCP timeout. One pipelined connection per store
    (`ports/redis_connection.py`) carries every call of the process. `lease_seconds`: how
    long a lease or budget hold outlives its call's last renewal (renewed every third of
    it); an `Admission`'s `lease_ttl_seconds` bounds how long a call is renewed at all.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "tollhouse:counters:",
        timeout: float = 0.5,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self._redis = RedisConnection(url, timeout=timeout)
        # Reservation ids: unique across processes by a random tag, cheaper than uuid4.
        self._id_tag = os.urandom(8).hex()
        self._ids = itertools.count(1)
        self._open_set = f"{prefix}o:{self._id_tag}"
        self._admit = _Script(ADMIT_LUA)
        self._settle = _Script(SETTLE_LUA)
        self._renew = _Script(RENEW_LUA)
        # Running calls holding a lease or a budget hold: renewed until this monotonic time.
        self._running: dict[str, tuple[Reservation, float]] = {}
        self._renewer: asyncio.Task[None] | None = None
        # Settles that failed, oldest first: (keys, args, when queued), and their retrier.
        self._pending: collections.deque[tuple[list[str], list[Any], float]] = collections.deque()
        self._retrier: asyncio.Task[None] | None = None
        self.settles_given_up = 0

    def settles_pending(self) -> int:
        return len(self._pending)

    async def admit(self, admission: Admission, amounts: Amounts) -> Decision:
        rid = f"{self._id_tag}.{next(self._ids)}"
        buckets, leases, budgets = admission.buckets, admission.concurrency, admission.budgets
        keys = self._keys(admission)
        lifetime = admission.lease_ttl_seconds
        args: list[Any] = [
            rid,
            _ms(min(lifetime, self.lease_seconds)),
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
        args.append(_ms(lifetime + SETTLE_RETRY_SECONDS + 60.0))
        reply: list[int] = await self._call(self._admit, keys, args)

        admitted, refused, retry_us = reply[0], reply[1], reply[2]
        base = 3 + len(buckets) + len(leases) + len(budgets)
        remaining: list[int] = reply[3:base]
        reset_after = [us / 1e6 for us in reply[base : base + len(buckets)]]
        if admitted:
            reservation = Reservation(rid, admission, amounts)
            if (leases or budgets) and lifetime > self.lease_seconds:
                self._running[rid] = (reservation, time.monotonic() + lifetime)
                if self._renewer is None:
                    self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())
            return Decision(
                admission,
                True,
                reservation=reservation,
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
        """Stop renewing; give queued settles one last try (a few seconds at most)."""
        if self._renewer is not None:
            self._renewer.cancel()
        if self._pending and self._retrier is not None:
            await asyncio.wait({self._retrier}, timeout=3.0)
        if self._retrier is not None:
            self._retrier.cancel()
        await self._redis.aclose()

    async def _end(self, reservation: Reservation, actual: list[int], cost: int) -> None:
        """Give back what `reservation` took beyond `actual` (requests, input, output) and
        book `cost` (-1: the reservation) on its budgets. Raises `CountersUnavailable` when
        it could not land now; it is then queued and retried (see the module's docstring)."""
        if reservation.ended:
            return
        # Marked before the round trip: a second settle never runs the script, even while
        # the first is in flight; one that fails is retried by the store itself.
        reservation.ended = True
        self._running.pop(reservation.id, None)
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
        if self._pending:  # settles land in the order the calls ended
            self._queue(keys, args)
            return
        try:
            await self._call(self._settle, keys, args)
        except CountersUnavailable:
            self._queue(keys, args)
            raise

    def _queue(self, keys: list[str], args: list[Any]) -> None:
        if len(self._pending) >= MAX_PENDING_SETTLES:
            self._pending.popleft()
            self._given_up(1)
        self._pending.append((keys, args, time.monotonic()))
        if self._retrier is None:
            self._retrier = asyncio.get_running_loop().create_task(self._retry_settles())

    async def _retry_settles(self) -> None:
        """Land the queued settles, oldest first, each until it lands or is too old."""
        delay = _RETRY_FIRST_DELAY
        try:
            while self._pending:
                keys, args, queued = self._pending[0]
                if time.monotonic() - queued > SETTLE_RETRY_SECONDS:
                    self._pending.popleft()
                    self._given_up(1)
                    continue
                try:
                    await self._call(self._settle, keys, args)
                except CountersUnavailable:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX_DELAY)
                    continue
                except Exception:  # a script error: retrying can't help
                    log.exception("settling reservation %s failed", args[0])
                self._pending.popleft()
                delay = _RETRY_FIRST_DELAY
        finally:
            self._retrier = None

    def _given_up(self, count: int) -> None:
        if self.settles_given_up == 0:
            log.error(
                "counter settles given up after %g s of retries: their spend is lost to "
                "budgets (their leases and holds have expired)",
                SETTLE_RETRY_SECONDS,
            )
        self.settles_given_up += count

    async def _renew_forever(self) -> None:
        """Every third of a lease, renew the leases and holds of the calls still running
        (one script for all of them); a renewal that fails is tried again next time."""
        try:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                now = time.monotonic()
                for rid in [rid for rid, (_, until) in self._running.items() if until <= now]:
                    del self._running[rid]  # past its call's longest life: let it expire
                if not self._running:
                    continue
                keys: list[str] = []
                args: list[Any] = [_ms(self.lease_seconds), len(self._running)]
                p = self.prefix
                for rid, (reservation, _) in self._running.items():
                    admission = reservation.admission
                    leases, budgets = admission.concurrency, admission.budgets
                    keys += (p + "c:" + c.key for c in leases)
                    keys += (p + "$:" + g.key for g in budgets)
                    keys += (p + "$held:" + g.key for g in budgets)
                    args += (rid, len(leases), len(budgets))
                    args += (reservation.amounts.reserve_nanousd for _ in budgets)
                keys.append(self._open_set)
                try:
                    await self._call(self._renew, keys, args)
                except CountersUnavailable:
                    pass  # the admitter learns of it from its probe and its calls
                except Exception:
                    log.exception("renewing counter leases failed")
        finally:
            self._renewer = None

    def _keys(self, admission: Admission) -> list[str]:
        """The Redis keys of `admission`'s limits, in the order both scripts read them."""
        p = self.prefix
        return [
            *(p + "b:" + b.key for b in admission.buckets),
            *(p + "c:" + c.key for c in admission.concurrency),
            *(p + "$:" + g.key for g in admission.budgets),
            *(p + "$held:" + g.key for g in admission.budgets),
            self._open_set,
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
