"""The response store's contract, held by each implementation against a real backend: in
process, SQLite in a tmp dir, the real Redis server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tests.ports.scenario import scenario_runner

from tollhouse.ports.cache.base import CachedAnswer, ResponseStore, ResponseStoreUnavailable
from tollhouse.ports.cache.in_process import InProcessResponseStore
from tollhouse.ports.cache.redis import RedisResponseStore
from tollhouse.ports.cache.sqlite import SQLiteResponseStore
from tollhouse.server.runner import free_port

MakeStore = Callable[[int, int], ResponseStore]


@pytest.fixture(params=["in_process", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """A factory of stores of one kind with given caps (entries, bytes), on a fresh backend."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        return lambda entries, size: RedisResponseStore(
            url, prefix=prefix, max_entries=entries, max_bytes=size
        )
    if request.param == "sqlite":
        return lambda entries, size: SQLiteResponseStore(
            tmp_path / "cache.db", max_entries=entries, max_bytes=size
        )
    return lambda entries, size: InProcessResponseStore(entries, size)


def run(
    make_store: MakeStore,
    test: Callable[[ResponseStore], Awaitable[None]],
    entries: int = 100,
    size: int = 1 << 20,
) -> None:
    scenario_runner(lambda: make_store(entries, size), open_first=False)(test)


def answer(
    body: bytes, ttl: float = 60, stale: float = 0, cost: str | None = "0.01"
) -> CachedAnswer:
    now = time.time()
    return CachedAnswer(body, now, now + ttl, now + ttl + stale, cost, "th_origin")


def test_an_answer_is_read_back_whole(make_store: MakeStore) -> None:
    async def test(store: ResponseStore) -> None:
        stored = answer(b'{"a":1}')
        await store.put("k1", stored)
        assert await store.get("k1", time.time()) == stored
        assert await store.get("k2", time.time()) is None

    run(make_store, test)


def test_a_put_replaces_the_key_s_answer(make_store: MakeStore) -> None:
    async def test(store: ResponseStore) -> None:
        await store.put("k1", answer(b"one"))
        await store.put("k1", answer(b"two"))
        got = await store.get("k1", time.time())
        assert got is not None
        assert got.body == b"two"
        assert store.entries == 1

    run(make_store, test)


def test_an_answer_is_never_returned_past_its_stale_until(make_store: MakeStore) -> None:
    async def test(store: ResponseStore) -> None:
        await store.put("k1", answer(b"short", ttl=0.2, stale=0.1))
        assert await store.get("k1", time.time()) is not None
        await asyncio.sleep(0.35)
        assert await store.get("k1", time.time()) is None

    run(make_store, test)


def test_the_entry_cap_drops_the_answers_nearest_their_end(make_store: MakeStore) -> None:
    async def test(store: ResponseStore) -> None:
        for i in range(5):
            await store.put(f"k{i}", answer(b"x" * 10, ttl=60 + i))
        now = time.time()
        kept = [i for i in range(5) if await store.get(f"k{i}", now) is not None]
        assert kept == [2, 3, 4]
        assert store.entries == 3

    run(make_store, test, entries=3)


def test_the_byte_cap_holds_and_a_larger_answer_is_not_stored(make_store: MakeStore) -> None:
    async def test(store: ResponseStore) -> None:
        for i in range(4):
            await store.put(f"k{i}", answer(b"x" * 10, ttl=60 + i))
        await store.put("huge", answer(b"y" * 26))
        now = time.time()
        assert await store.get("huge", now) is None
        kept = [i for i in range(4) if await store.get(f"k{i}", now) is not None]
        assert kept == [2, 3]

    run(make_store, test, size=25)


def test_the_sqlite_store_keeps_its_answers_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"

    async def put(store: ResponseStore) -> None:
        await store.put("k1", answer(b"kept"))

    async def get(store: ResponseStore) -> None:
        got = await store.get("k1", time.time())
        assert got is not None
        assert got.body == b"kept"
        assert got.cost_usd == "0.01"

    scenario_runner(lambda: SQLiteResponseStore(path), open_first=False)(put)
    scenario_runner(lambda: SQLiteResponseStore(path), open_first=False)(get)


def test_an_unreachable_redis_is_a_store_failure_within_its_timeout() -> None:
    async def test(store: ResponseStore) -> None:
        started = time.monotonic()
        with pytest.raises(ResponseStoreUnavailable):
            await store.get("k1", time.time())
        with pytest.raises(ResponseStoreUnavailable):
            await store.put("k1", answer(b"x"))
        assert time.monotonic() - started < 2

    url = f"redis://127.0.0.1:{free_port()}/0"
    scenario_runner(lambda: RedisResponseStore(url, timeout=0.2), open_first=False)(test)
