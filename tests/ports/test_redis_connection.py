"""The request path's Redis client (ports/redis_connection.py) against real redis-servers:
pipelined replies reach the right callers, error replies are values, a silent or absent
server fails fast, and AUTH / SELECT / TLS-free URLs are honoured."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator

import pytest
import redis
from tests.ports.counters.redis_server import PrivateRedis, free_port, private_redis_server
from tests.support import server_unreachable

from tollhouse.ports.redis_connection import RedisConnection, RedisUnavailable, ReplyError


@pytest.fixture
def password_redis() -> Iterator[PrivateRedis]:
    with private_redis_server(password="s3cret pass") as server:
        yield server


def test_concurrent_commands_on_one_connection_each_get_their_own_reply(
    redis_url: str, redis_prefix: str
) -> None:
    async def scenario() -> tuple[list[bytes | None], list[int]]:
        connection = RedisConnection(redis_url, timeout=5)
        try:
            await asyncio.gather(
                *(connection.call("SET", f"{redis_prefix}k{i}", f"v{i}") for i in range(300))
            )
            values = await asyncio.gather(
                *(connection.call("GET", f"{redis_prefix}k{i}") for i in range(300))
            )
            counts = await asyncio.gather(
                *(connection.call("INCR", f"{redis_prefix}n") for _ in range(300))
            )
            return values, counts
        finally:
            await connection.aclose()

    values, counts = asyncio.run(scenario())
    assert values == [f"v{i}".encode() for i in range(300)]
    assert sorted(counts) == list(range(1, 301))


def test_large_and_non_ascii_values_survive_the_round_trip(
    redis_url: str, redis_prefix: str
) -> None:
    big = "é" * 500_000  # a reply of 1 MB arrives in many reads

    async def scenario() -> bytes:
        connection = RedisConnection(redis_url, timeout=5)
        try:
            await connection.call("SET", f"{redis_prefix}user:Zoë", big)
            reply: bytes = await connection.call("GET", f"{redis_prefix}user:Zoë")
            return reply
        finally:
            await connection.aclose()

    assert asyncio.run(scenario()).decode() == big
    assert redis.Redis.from_url(redis_url).strlen(f"{redis_prefix}user:Zoë") == len(big.encode())


def test_an_error_reply_is_returned_not_raised(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> tuple[object, object]:
        connection = RedisConnection(redis_url, timeout=5)
        try:
            await connection.call("SET", f"{redis_prefix}text", "not a number")
            error = await connection.call("INCR", f"{redis_prefix}text")
            after = await connection.call("GET", f"{redis_prefix}text")  # connection still fine
            return error, after
        finally:
            await connection.aclose()

    error, after = asyncio.run(scenario())
    assert isinstance(error, ReplyError)
    assert "not an integer" in str(error)
    assert after == b"not a number"


def test_the_database_in_the_url_is_selected(redis_url: str, redis_prefix: str) -> None:
    base = redis_url.rsplit("/", 1)[0]

    async def scenario() -> None:
        connection = RedisConnection(f"{base}/3", timeout=5)
        try:
            await connection.call("SET", f"{redis_prefix}in-db-3", "yes")
        finally:
            await connection.aclose()

    asyncio.run(scenario())
    db3 = redis.Redis.from_url(f"{base}/3")
    try:
        assert db3.get(f"{redis_prefix}in-db-3") == b"yes"
        assert redis.Redis.from_url(f"{base}/0").get(f"{redis_prefix}in-db-3") is None
    finally:
        db3.delete(f"{redis_prefix}in-db-3")


def test_a_password_in_the_url_authenticates(password_redis: PrivateRedis) -> None:
    async def scenario(url: str) -> object:
        connection = RedisConnection(url, timeout=5)
        try:
            return await connection.call("PING")
        finally:
            await connection.aclose()

    assert asyncio.run(scenario(password_redis.url)) == b"PONG"
    wrong = password_redis.url.replace("s3cret", "wrong")
    with pytest.raises(RedisUnavailable, match="refused AUTH"):
        asyncio.run(scenario(wrong))


def test_a_server_that_never_answers_fails_every_waiting_command_within_the_timeout() -> None:
    async def scenario() -> tuple[list[str], float]:
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        connection = RedisConnection(f"redis://127.0.0.1:{port}/0", timeout=0.4)
        started = time.monotonic()
        try:
            results = await asyncio.gather(
                *(connection.call("GET", "k") for _ in range(5)), return_exceptions=True
            )
            return [type(r).__name__ for r in results], time.monotonic() - started
        finally:
            await connection.aclose()
            silent.close()

    kinds, took = asyncio.run(scenario())
    assert kinds == ["RedisUnavailable"] * 5
    assert took < 1.0


def test_no_server_fails_fast_and_a_started_one_is_used_without_a_new_client() -> None:
    server = PrivateRedis()

    async def scenario() -> list[str]:
        connection = RedisConnection(server.url, timeout=0.5)
        seen = []
        try:
            try:
                await connection.call("PING")
            except RedisUnavailable:
                seen.append("unavailable")
            server.start()
            seen.append((await connection.call("PING")).decode())
            return seen
        finally:
            await connection.aclose()
            server.stop()

    if shutil.which("redis-server") is None:
        server_unreachable("redis-server is not installed")
    assert asyncio.run(scenario()) == ["unavailable", "PONG"]


def test_only_redis_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="unsupported Redis URL scheme"):
        RedisConnection(f"http://127.0.0.1:{free_port()}", timeout=1)
