"""The PostgreSQL connection every shared store holds the same way: one connection, opened
on first use in UTC and prepared by its store (migrations, session settings), opened afresh
after it was dropped; `lock` serialises the store's operations on it.

One connection per store is enough: ledger batches are written one at a time and key
lookups are cached (ports/keys/key_ring.py), so a pool would buy nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg


class PostgresConnection:
    """`conninfo` is a libpq connection string or URI; connecting gives up after
    `connect_timeout` seconds (libpq counts whole seconds, at least 1). `what` names the
    store in the error a closed one raises."""

    def __init__(
        self,
        conninfo: str,
        *,
        connect_timeout: float,
        prepare: Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]],
        what: str,
    ) -> None:
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout
        self.lock = asyncio.Lock()
        self._prepare = prepare
        self._what = what
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._closed = False

    async def get(self) -> psycopg.AsyncConnection[Any]:
        """The open connection, opened and prepared if there is none; call under `lock`."""
        if self._closed:
            raise RuntimeError(f"the {self._what} is closed")
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
        )
        try:
            # Timestamps come back in UTC whatever the server's zone, so a row reads back
            # as it was written.
            await conn.execute("SET TIME ZONE 'UTC'")
            await self._prepare(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def drop(self) -> None:
        """Close the connection (it may be left mid-protocol); the next `get` opens anew.
        Call under `lock`."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def aclose(self) -> None:
        self._closed = True
        async with self.lock:
            await self.drop()

    @asynccontextmanager
    async def operation(
        self, seconds: float, unavailable: Callable[[str], Exception]
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection for one operation under `lock`, bounded by `seconds`. A
        failure of the database (not of the caller's input) drops the connection, which may
        be left mid-protocol, and is raised as `unavailable(message)`."""
        async with self.lock:
            try:
                async with asyncio.timeout(seconds):
                    yield await self.get()
            except TimeoutError as error:
                await self.drop()
                raise unavailable(f"no answer from PostgreSQL in {seconds}s") from error
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as error:
                await self.drop()
                raise unavailable(str(error)) from error
