"""Counter stores on real backends: the in-process store, and the real Redis server under
a key prefix of the test's own (`redis_url`, `redis_prefix`: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.ports.counters.redis_server import PrivateRedis, private_redis_server
from tests.ports.scenario import scenario_runner

from tollhouse.ports.counters.base import CounterStore
from tollhouse.ports.counters.in_process import InProcessCounterStore
from tollhouse.ports.counters.redis import RedisCounterStore


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
    return scenario_runner(new_store, open_first=False)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with private_redis_server() as server:
        yield server
