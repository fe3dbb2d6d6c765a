"""A Redis stall must not lock keys out (#13.1): settles that fail are retried until they
land, once each, and a lease lives only as long as its call (renewed while it runs), so
capacity a call never gave back returns within seconds. On a private redis-server that
the tests stall with SIGSTOP (never the shared one)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from tests.ports.counters.redis_server import PrivateRedis

from tollhouse.ports.counters.base import (
    Admission,
    Amounts,
    BudgetLimit,
    ConcurrencyLimit,
    CountersUnavailable,
)
from tollhouse.ports.counters.redis import RedisCounterStore

PREFIX = "stall:"
LEASES = PREFIX + "c:conc:key:k"
BUDGET = "budget:key:k:day:2026-12-04"


def admission(limit: int = 2) -> Admission:
    return Admission(
        concurrency=(ConcurrencyLimit("conc:key:k", limit),),
        budgets=(BudgetLimit(BUDGET, 1_000_000_000, 86400),),
        lease_ttl_seconds=600.0,
    )


def live_leases(server: PrivateRedis) -> int:
    client = redis.Redis.from_url(server.url)
    now_ms = int(time.time() * 1000)
    return int(client.zcount(LEASES, now_ms + 1, "+inf"))


def budget_state(server: PrivateRedis) -> tuple[int, int]:
    state = redis.Redis.from_url(server.url).hmget(PREFIX + "$:" + BUDGET, "spent", "held")
    return int(state[0] or 0), int(state[1] or 0)


async def eventually(check: object, within: float) -> float:
    """Seconds until `check()` is true, polled; fails after `within`."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < within, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def test_a_settle_that_fails_in_a_stall_lands_once_after_it(private_redis: PrivateRedis) -> None:
    async def scenario() -> None:
        store = RedisCounterStore(private_redis.url, prefix=PREFIX, timeout=0.3)
        try:
            decision = await store.admit(admission(), Amounts(reserve_nanousd=5_000))
            assert decision.reservation is not None
            private_redis.pause()
            try:
                # The script reaches the stalled server and may run when it wakes: its
                # retry must not book the spend twice.
                with pytest.raises(CountersUnavailable):
                    await store.settle(
                        decision.reservation, input_tokens=1, output_tokens=1, cost_nanousd=700
                    )
                assert store.settles_pending() == 1
                await asyncio.sleep(1.0)
            finally:
                private_redis.resume()
            await eventually(lambda: store.settles_pending() == 0, within=5.0)
            assert live_leases(private_redis) == 0
            assert budget_state(private_redis) == (700, 0)
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_settles_queued_in_a_stall_land_in_order_and_new_ones_wait_their_turn(
    private_redis: PrivateRedis,
) -> None:
    async def scenario() -> None:
        store = RedisCounterStore(private_redis.url, prefix=PREFIX, timeout=0.3)
        try:
            first = await store.admit(admission(), Amounts(reserve_nanousd=5_000))
            second = await store.admit(admission(), Amounts(reserve_nanousd=5_000))
            assert first.reservation is not None
            assert second.reservation is not None
            private_redis.pause()
            try:
                with pytest.raises(CountersUnavailable):
                    await store.settle(
                        first.reservation, input_tokens=0, output_tokens=0, cost_nanousd=100
                    )
            finally:
                private_redis.resume()
            # Queued behind the first, not sent ahead of it.
            await store.release(second.reservation)
            assert store.settles_pending() in (1, 2)
            await eventually(lambda: store.settles_pending() == 0, within=5.0)
            assert live_leases(private_redis) == 0
            assert budget_state(private_redis) == (100, 0)
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_a_running_call_keeps_its_lease_and_an_abandoned_one_expires_in_seconds(
    private_redis: PrivateRedis,
) -> None:
    async def scenario() -> None:
        running = RedisCounterStore(private_redis.url, prefix=PREFIX, lease_seconds=1.5)
        abandoned = RedisCounterStore(private_redis.url, prefix=PREFIX, lease_seconds=1.5)
        try:
            kept = await running.admit(admission(), Amounts(reserve_nanousd=1_000))
            lost = await abandoned.admit(admission(), Amounts(reserve_nanousd=2_000))
            assert kept.admitted
            assert lost.admitted
            await abandoned.aclose()  # its process is gone: nothing renews or settles it
            assert live_leases(private_redis) == 2
            await asyncio.sleep(3.5)  # over two leases: the running call was renewed
            assert live_leases(private_redis) == 1
            # The abandoned hold is purged (and `held` lowered) by the next admission.
            again = await running.admit(admission(), Amounts(reserve_nanousd=0))
            assert again.admitted
            assert budget_state(private_redis)[1] == 1_000
        finally:
            await running.aclose()

    asyncio.run(scenario())


def test_a_settle_that_landed_and_is_sent_again_books_nothing_twice(
    private_redis: PrivateRedis,
) -> None:
    """What a retry of a settle whose reply was lost does (it had run)."""

    async def scenario() -> None:
        store = RedisCounterStore(private_redis.url, prefix=PREFIX)
        try:
            decision = await store.admit(admission(), Amounts(reserve_nanousd=5_000))
            reservation = decision.reservation
            assert reservation is not None
            await store.settle(reservation, input_tokens=0, output_tokens=0, cost_nanousd=700)
            reservation.ended = False  # as if this process never heard back
            await store.settle(reservation, input_tokens=0, output_tokens=0, cost_nanousd=700)
            assert budget_state(private_redis) == (700, 0)
        finally:
            await store.aclose()

    asyncio.run(scenario())
