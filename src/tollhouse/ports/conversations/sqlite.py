"""Conversation turns in a SQLite file: the embedded default, by default the ledger's file.

As in the ledger's and the keys' stores, sqlite3 blocks, so every statement runs on one
dedicated thread that owns the only connection (ports/sqlite_connection.py). A `put` writes
the turn, drops the one it continued, sweeps expired turns and holds the tenant to its cap
in one `BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import os
import time

from tollhouse.ports.conversations.base import ConversationStoreUnavailable
from tollhouse.ports.conversations.migrations import CONVERSATIONS
from tollhouse.ports.sqlite_connection import SQLiteThread

_GET = "SELECT document FROM conversation_turns WHERE tenant = ? AND turn_id = ? AND expires_at > ?"
_PUT = (
    "INSERT OR REPLACE INTO conversation_turns (tenant, turn_id, document, expires_at) "
    "VALUES (?, ?, ?, ?)"
)
_DROP = "DELETE FROM conversation_turns WHERE tenant = ? AND turn_id = ?"
_SWEEP = "DELETE FROM conversation_turns WHERE expires_at <= ?"
_CAP = (
    "DELETE FROM conversation_turns WHERE tenant = ? AND turn_id IN ("
    "SELECT turn_id FROM conversation_turns WHERE tenant = ? "
    "ORDER BY expires_at DESC LIMIT -1 OFFSET ?)"
)


class SQLiteConversationStore:
    """Turns in the SQLite file at `path` (created if missing); a tenant keeps at most
    `max_per_tenant`. `busy_timeout` is how long a write waits for another connection (the
    ledger's writer) holding the file's write lock."""

    def __init__(
        self,
        path: str | os.PathLike[str] = "tollhouse.db",
        *,
        max_per_tenant: int = 10_000,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = path
        self.max_per_tenant = max_per_tenant
        self._db = SQLiteThread(
            path,
            busy_timeout,
            CONVERSATIONS.migrate_sqlite,
            what="conversation store",
            unavailable=ConversationStoreUnavailable,
        )

    async def open(self) -> None:
        await self._db.run(self._db.connection)

    async def get(self, tenant: str, turn_id: str) -> bytes | None:
        return await self._db.run(self._get, tenant, turn_id, time.time())

    async def put(
        self,
        tenant: str,
        turn_id: str,
        document: bytes,
        *,
        ttl: float,
        replaces: str | None = None,
    ) -> None:
        await self._db.run(self._put, tenant, turn_id, document, ttl, replaces, time.time())

    async def aclose(self) -> None:
        await self._db.aclose()

    # Everything below runs on the store's own thread.

    def _get(self, tenant: str, turn_id: str, now: float) -> bytes | None:
        row = self._db.connection().execute(_GET, (tenant, turn_id, now)).fetchone()
        return bytes(row[0]) if row is not None else None

    def _put(
        self,
        tenant: str,
        turn_id: str,
        document: bytes,
        ttl: float,
        replaces: str | None,
        now: float,
    ) -> None:
        conn = self._db.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_PUT, (tenant, turn_id, document, now + ttl))
            if replaces is not None and replaces != turn_id:
                conn.execute(_DROP, (tenant, replaces))
            conn.execute(_SWEEP, (now,))
            conn.execute(_CAP, (tenant, tenant, self.max_per_tenant))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
