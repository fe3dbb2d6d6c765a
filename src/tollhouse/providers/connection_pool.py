"""Keep-alive connections to one upstream origin, bounded in number.

Idle connections are reused newest first (the likeliest to still be open) and dropped after
`keepalive` seconds; when `max_connections` are busy, callers queue for the next release
instead of opening more.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque

from tollhouse.providers.base import UpstreamConnectionError, UpstreamTimeoutError
from tollhouse.providers.http1_connection import Http1Connection


class ConnectionPool:
    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int,
        connect_timeout: float,
        keepalive: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._idle: list[tuple[Http1Connection, float]] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Http1Connection:
        while True:
            now = time.monotonic()
            while self._idle:
                conn, since = self._idle.pop()
                if not conn.closed and now - since < self._keepalive:
                    return conn
                self._discard(conn)
            if self._open < self._max:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, conn: Http1Connection, reusable: bool) -> None:
        if reusable and not conn.closed:
            self._idle.append((conn, time.monotonic()))
        else:
            self._discard(conn)
        self._wake_one()

    def _discard(self, conn: Http1Connection) -> None:
        conn.close()
        self._open -= 1

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> Http1Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Http1Connection(loop),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"no connection to {self.host}:{self.port} within {self._connect_timeout:g} s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
            raise UpstreamConnectionError(
                f"cannot connect to {self.host}:{self.port}: {reason}"
            ) from None
        return conn

    def close(self) -> None:
        for conn, _ in self._idle:
            conn.close()
        self._open -= len(self._idle)
        self._idle.clear()
