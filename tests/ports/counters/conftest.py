"""Counter stores on real backends: the in-process store, and the real Redis server
(TOLLHOUSE_TEST_REDIS, default redis://127.0.0.1:6379/0) under a key prefix of the test's
own, deleted afterwards, so parallel runs never meet.

Without a Redis server the Redis tests skip locally, with the reason; under CI (CI=true)
they fail, since a counters backend that went untested is not a pass.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis
from tests.ports.counters.redis_server import PrivateRedis

from tollhouse.ports.counters.base import CounterStore
from tollhouse.ports.counters.in_process import InProcessCounterStore
from tollhouse.ports.counters.redis import RedisCounterStore

T = TypeVar("T")

REDIS = os.environ.get("TOLLHOUSE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _unreachable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as error:
        _unreachable(f"Redis not reachable at {REDIS!r}: {error}")
    return REDIS


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"th_test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["in_process", "redis"])
def new_store(request: pytest.FixtureRequest) -> Callable[[], CounterStore]:
    """Makes stores on one backend: every call gives a store on the same counters (for
    Redis; the in-process store is its own counters, so tests make one per scenario)."""
    if request.param == "in_process":
        return InProcessCounterStore
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    # A generous timeout: these tests are about behaviour, and a busy CI machine can take
    # longer than the production default to open a burst of connections.
    return lambda: RedisCounterStore(url, prefix=prefix, timeout=5.0)


@pytest.fixture
def on_store(new_store: Callable[[], CounterStore]) -> Callable[..., Any]:
    """Runs `scenario(store)` in a fresh event loop; its result."""

    def run(scenario: Callable[[CounterStore], Awaitable[T]]) -> T:
        async def main() -> T:
            store = new_store()
            try:
                return await scenario(store)
            finally:
                await store.aclose()

        return asyncio.run(main())

    return run


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _unreachable("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
