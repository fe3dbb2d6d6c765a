"""The conversation store's contract, held by each implementation against a real backend:
SQLite in a tmp dir, the real PostgreSQL and Redis servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tests.ports.scenario import scenario_runner

from tollhouse.ports.conversations.base import ConversationStore
from tollhouse.ports.conversations.postgres import PostgresConversationStore
from tollhouse.ports.conversations.redis import RedisConversationStore
from tollhouse.ports.conversations.sqlite import SQLiteConversationStore

MakeStore = Callable[[int], ConversationStore]


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """A factory of stores of one kind with a given per-tenant cap, on a fresh database."""
    if request.param == "postgres":
        conninfo = request.getfixturevalue("postgres_conninfo")
        return lambda cap: PostgresConversationStore(conninfo, max_per_tenant=cap)
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        return lambda cap: RedisConversationStore(url, prefix=prefix, max_per_tenant=cap)
    return lambda cap: SQLiteConversationStore(tmp_path / "c.db", max_per_tenant=cap)


def run(
    make_store: MakeStore, cap: int, test: Callable[[ConversationStore], Awaitable[None]]
) -> None:
    scenario_runner(lambda: make_store(cap))(test)


def test_a_turn_is_read_back_by_its_tenant_only(make_store: MakeStore) -> None:
    async def test(store: ConversationStore) -> None:
        await store.put("key:a", "msg_1", b'{"messages":[1]}', ttl=60)
        assert await store.get("key:a", "msg_1") == b'{"messages":[1]}'
        assert await store.get("key:b", "msg_1") is None
        assert await store.get("key:a", "msg_2") is None

    run(make_store, 10, test)


def test_a_continued_turn_is_replaced_by_its_continuation(make_store: MakeStore) -> None:
    async def test(store: ConversationStore) -> None:
        await store.put("key:a", "msg_1", b"one", ttl=60)
        await store.put("key:a", "msg_2", b"one two", ttl=60, replaces="msg_1")
        assert await store.get("key:a", "msg_1") is None
        assert await store.get("key:a", "msg_2") == b"one two"

    run(make_store, 10, test)


def test_a_turn_expires_after_its_ttl(make_store: MakeStore) -> None:
    async def test(store: ConversationStore) -> None:
        await store.put("key:a", "msg_1", b"short", ttl=0.3)
        await store.put("key:a", "msg_2", b"long", ttl=60)
        await asyncio.sleep(0.6)
        assert await store.get("key:a", "msg_1") is None
        assert await store.get("key:a", "msg_2") == b"long"

    run(make_store, 10, test)


def test_a_tenant_over_its_cap_loses_its_oldest_turns_only(make_store: MakeStore) -> None:
    async def test(store: ConversationStore) -> None:
        await store.put("key:b", "msg_other", b"b", ttl=60)
        for i in range(5):
            await store.put("key:a", f"msg_{i}", str(i).encode(), ttl=60 + i)
        kept = [await store.get("key:a", f"msg_{i}") for i in range(5)]
        assert kept == [None, None, b"2", b"3", b"4"]
        assert await store.get("key:b", "msg_other") == b"b"

    run(make_store, 3, test)
