"""Answers in a SQLite file: survives a restart, and is shared by the gateway processes of
one host that point at the same file.

As in the other embedded stores, sqlite3 blocks, so every statement runs on one dedicated
thread that owns the only connection (ports/sqlite_connection.py). A `put` sweeps expired
rows, writes the answer and holds the store to its caps in one `BEGIN IMMEDIATE`
transaction; a `get` never returns a row past its `stale_until`, swept or not.
"""

from __future__ import annotations

import os
import sqlite3

from tollhouse.ports.cache.base import (
    CachedAnswer,
    ResponseStoreUnavailable,
    decode_answer,
    encode_answer,
)
from tollhouse.ports.cache.migrations import RESPONSE_CACHE
from tollhouse.ports.sqlite_connection import SQLiteThread

_GET = "SELECT answer FROM response_cache WHERE key = ? AND stale_until > ?"
_PUT = "INSERT OR REPLACE INTO response_cache (key, answer, size, stale_until) VALUES (?, ?, ?, ?)"
_SWEEP = "DELETE FROM response_cache WHERE stale_until <= ?"
_TOTALS = "SELECT count(*), total(size) FROM response_cache"
_NEAREST_END = "SELECT key, size FROM response_cache ORDER BY stale_until"
_DROP = "DELETE FROM response_cache WHERE key = ?"


class SQLiteResponseStore:
    """Answers in the SQLite file at `path` (created if missing), at most `max_entries`
    and `max_bytes`. `busy_timeout` is how long a write waits for another connection
    holding the file's write lock."""

    def __init__(
        self,
        path: str | os.PathLike[str] = "tollhouse-cache.db",
        *,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        busy_timeout: float = 2.0,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries = 0
        self._db = SQLiteThread(
            path,
            busy_timeout,
            RESPONSE_CACHE.migrate_sqlite,
            what="response cache",
            unavailable=ResponseStoreUnavailable,
        )

    @property
    def entries(self) -> int:
        return self._entries

    async def get(self, key: str, now: float) -> CachedAnswer | None:
        row = await self._db.run(self._get, key, now)
        return decode_answer(row) if row is not None else None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        if answer.size > self.max_bytes:
            return
        self._entries = await self._db.run(
            self._put, key, encode_answer(answer), answer.size, answer.stale_until, answer.stored_at
        )

    async def aclose(self) -> None:
        await self._db.aclose()

    # Everything below runs on the store's own thread.

    def _get(self, key: str, now: float) -> bytes | None:
        row = self._db.connection().execute(_GET, (key, now)).fetchone()
        return bytes(row[0]) if row is not None else None

    def _put(self, key: str, encoded: bytes, size: int, stale_until: float, now: float) -> int:
        conn = self._db.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_SWEEP, (now,))
            conn.execute(_PUT, (key, encoded, size, stale_until))
            count, total = conn.execute(_TOTALS).fetchone()
            if count > self.max_entries or total > self.max_bytes:
                count, total = self._evict(conn, count, int(total))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return int(count)

    def _evict(self, conn: sqlite3.Connection, count: int, total: int) -> tuple[int, int]:
        """Drop the answers nearest their end until both caps hold."""
        dropped = []
        for key, size in conn.execute(_NEAREST_END):
            if count <= self.max_entries and total <= self.max_bytes:
                break
            dropped.append((key,))
            count -= 1
            total -= size
        conn.executemany(_DROP, dropped)
        return count, total
