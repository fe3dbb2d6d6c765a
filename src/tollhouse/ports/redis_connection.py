"""One pipelined connection to Redis for the request path: RESP written by hand, replies
parsed by hiredis (Redis's own C parser), no connection pool.

Why not redis-py: profiling the Redis-backed admission (bench/limits.py) put the largest
share of the gateway's CPU in redis-py (pool checkout and release, argument encoding, retry
and deprecation wrappers, a timeout per read; figures in bench/results/decisions.md). The
gateway sends a handful of commands (EVALSHA, EVAL, HGET) whose arguments are already
strings and integers, so the client it needs is small: every caller writes its command at
once on the one connection and awaits its reply; Redis answers in order, so replies are
matched first in, first out, and concurrency needs no pool.

Failures are `RedisUnavailable`, within about `timeout` seconds: a refused or lost
connection, or no reply in time, in which case the connection is dropped (every command
still waiting on it fails; the one in flight may or may not have run). The next command
connects again, so the client recovers by itself when the server returns. Error replies
(`-ERR ...`) are returned as `hiredis.ReplyError` values for the caller to read.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

Arg = str | bytes | int
ReplyError = hiredis.ReplyError  # what an error reply (`-ERR ...`) comes back as


class RedisUnavailable(Exception):
    """The server can't be reached, or didn't answer within the timeout."""


class RedisConnection:
    """Commands to the server at `url` (`redis://[[user]:password@]host[:port][/db]`, or
    `rediss://` for TLS), each answered or failed within about `timeout` seconds."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}: use redis://")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self.timeout = timeout
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Task[_RespProtocol] | None = None

    async def call(self, *args: Arg) -> Any:
        """The server's reply to the command `args` (an error reply as `ReplyError`)."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connected()
        return await protocol.send(_pack(args))

    async def aclose(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._protocol is not None:
            self._protocol.drop("connection closed by the client")
            self._protocol = None

    async def _connected(self) -> _RespProtocol:
        """The open connection, connecting once for every caller that asks meanwhile."""
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        task = self._connecting
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._connecting is task:
                self._connecting = None

    async def _connect(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.tls else None
        try:
            async with asyncio.timeout(self.timeout):
                _, protocol = await loop.create_connection(
                    lambda: _RespProtocol(loop, self.timeout), self.host, self.port, ssl=context
                )
        except (OSError, TimeoutError) as error:
            raise RedisUnavailable(
                f"can't connect to Redis at {self.host}:{self.port}: {error or 'timed out'}"
            ) from None
        hello: list[tuple[str, tuple[Arg, ...]]] = []
        if self.password is not None:
            credentials = (
                (self.password,) if self.username is None else (self.username, self.password)
            )
            hello.append(("AUTH", ("AUTH", *credentials)))
        if self.db:
            hello.append(("SELECT", ("SELECT", self.db)))
        for name, command in hello:
            reply = await protocol.send(_pack(command))
            if isinstance(reply, ReplyError):
                protocol.drop(f"{name} refused")
                raise RedisUnavailable(f"Redis refused {name}: {reply}")
        self._protocol = protocol
        return protocol


class _RespProtocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.reader = hiredis.Reader()
        # Callers waiting, in the order their commands were written: (future, deadline).
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: str | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.timeout = timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None:
            raise RedisUnavailable(f"Redis connection lost: {self.lost}")
        future: asyncio.Future[Any] = self.loop.create_future()
        self.waiting.append((future, time.monotonic() + self.timeout))
        self.transport.write(packed)
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(self.timeout / 2, self._watch)
        return future

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        while (reply := reader.gets()) is not False:
            if not waiting:
                self.drop("a reply nobody asked for")
                return
            future, _ = waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.drop(str(exc) if exc else "closed by the server")

    def drop(self, why: str) -> None:
        """Close the connection and fail every command still waiting on it."""
        if self.lost is None:
            self.lost = why
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.transport is not None:
            self.transport.close()
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(RedisUnavailable(f"Redis connection lost: {self.lost}"))

    def _watch(self) -> None:
        """A timer, not one per command: the oldest command waiting past its deadline means
        the server is stuck or gone, so the connection is dropped."""
        self._watchdog = None
        if self.lost is not None:
            return
        if self.waiting and self.waiting[0][1] <= time.monotonic():
            self.drop(f"no reply within {self.timeout:g} s")
            return
        if self.waiting:
            self._watchdog = self.loop.call_later(self.timeout / 2, self._watch)


def _pack(args: tuple[Arg, ...]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        else:
            data = b"%d" % arg
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)
