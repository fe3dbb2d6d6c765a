"""What only the Redis store promises: exact limits across OS processes, fast failure when
the server is away, and recovery by itself when it returns."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from tests.ports.counters.redis_server import PrivateRedis, free_port

from tollhouse.ports.counters.base import (
    Admission,
    Amounts,
    BucketLimit,
    CountersUnavailable,
    Takes,
)
from tollhouse.ports.counters.redis import RedisCounterStore

WORKER = Path(__file__).with_name("worker.py")


def run_workers(mode: str, url: str, prefix: str, processes: int = 4) -> list[int]:
    start_at = time.time() + 3.0
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, url, prefix, str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * processes
    return [int(output) for output in outputs]


def test_four_processes_admit_exactly_the_bucket_capacity(
    redis_url: str, redis_prefix: str
) -> None:
    admitted = run_workers("rate", redis_url, redis_prefix)
    assert sum(admitted) == 100


def test_four_processes_keep_a_budget_between_95_cents_and_one_dollar(
    redis_url: str, redis_prefix: str
) -> None:
    settled = run_workers("budget", redis_url, redis_prefix)
    spent = int(
        redis.Redis.from_url(redis_url).hget(redis_prefix + "$:budget:key:shared:day", "spent") or 0
    )
    assert sum(settled) > 0
    assert 950_000_000 <= spent <= 1_000_000_000


def test_unreachable_redis_raises_counters_unavailable_quickly() -> None:
    async def scenario() -> float:
        store = RedisCounterStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
        started = time.monotonic()
        try:
            with pytest.raises(CountersUnavailable):
                await store.admit(
                    Admission(buckets=[BucketLimit("rpm", 10, Takes.REQUESTS)]), Amounts()
                )
            return time.monotonic() - started
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) < 1.0


def test_store_works_again_by_itself_when_redis_returns(private_redis: PrivateRedis) -> None:
    admission = Admission(buckets=[BucketLimit("rpm", 10, Takes.REQUESTS)])

    async def scenario() -> list[str]:
        store = RedisCounterStore(private_redis.url, timeout=0.5)
        seen: list[str] = []
        try:
            seen.append(str((await store.admit(admission, Amounts())).admitted))
            private_redis.stop()
            try:
                await store.admit(admission, Amounts())
            except CountersUnavailable:
                seen.append("unavailable")
            private_redis.start()
            seen.append(str((await store.admit(admission, Amounts())).admitted))
            return seen
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == ["True", "unavailable", "True"]


def test_scripts_flushed_from_the_server_are_loaded_again(private_redis: PrivateRedis) -> None:
    admission = Admission(buckets=[BucketLimit("rpm", 10, Takes.REQUESTS)])

    async def scenario() -> list[int]:
        store = RedisCounterStore(private_redis.url)
        try:
            first = await store.admit(admission, Amounts())
            redis.Redis(port=private_redis.port).script_flush()
            second = await store.admit(admission, Amounts())
            return [first.headroom()["rpm"], second.headroom()["rpm"]]
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == [9, 8]
