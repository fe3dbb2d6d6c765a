"""Conversation turns on PostgreSQL: shared by every gateway process, like the ledger there.

One connection (ports/postgres_connection.py), opened and migrated on first use and again
after any failure. A `put` writes the turn, drops the one it continued, sweeps expired turns
and holds the tenant to its cap in one transaction.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from tollhouse.ports.conversations.base import ConversationStoreUnavailable
from tollhouse.ports.conversations.migrations import CONVERSATIONS
from tollhouse.ports.postgres_connection import PostgresConnection

_GET = (
    "SELECT document FROM conversation_turns WHERE tenant = %s AND turn_id = %s AND expires_at > %s"
)
_PUT = (
    "INSERT INTO conversation_turns (tenant, turn_id, document, expires_at) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, turn_id) "
    "DO UPDATE SET document = EXCLUDED.document, expires_at = EXCLUDED.expires_at"
)
_DROP = "DELETE FROM conversation_turns WHERE tenant = %s AND turn_id = %s"
_SWEEP = "DELETE FROM conversation_turns WHERE expires_at <= %s"
_CAP = (
    "DELETE FROM conversation_turns WHERE tenant = %s AND turn_id IN ("
    "SELECT turn_id FROM conversation_turns WHERE tenant = %s "
    "ORDER BY expires_at DESC OFFSET %s)"
)


class PostgresConversationStore:
    """`conninfo` is a libpq connection string or URI. Every operation gives up after
    `operation_timeout` seconds and drops the connection, to be opened afresh next time."""

    def __init__(
        self,
        conninfo: str,
        *,
        max_per_tenant: int = 10_000,
        connect_timeout: float = 5.0,
        operation_timeout: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.max_per_tenant = max_per_tenant
        self.operation_timeout = operation_timeout
        self._db = PostgresConnection(
            conninfo,
            connect_timeout=connect_timeout,
            prepare=CONVERSATIONS.migrate_postgres,
            what="conversation store",
        )

    async def open(self) -> None:
        async with self._operation():
            pass

    async def get(self, tenant: str, turn_id: str) -> bytes | None:
        async with self._operation() as conn:
            cursor = await conn.execute(_GET, (tenant, turn_id, time.time()))
            row = await cursor.fetchone()
        return bytes(row[0]) if row is not None else None

    async def put(
        self,
        tenant: str,
        turn_id: str,
        document: bytes,
        *,
        ttl: float,
        replaces: str | None = None,
    ) -> None:
        now = time.time()
        async with self._operation() as conn, conn.transaction():
            await conn.execute(_PUT, (tenant, turn_id, document, now + ttl))
            if replaces is not None and replaces != turn_id:
                await conn.execute(_DROP, (tenant, replaces))
            await conn.execute(_SWEEP, (now,))
            await conn.execute(_CAP, (tenant, tenant, self.max_per_tenant))

    async def aclose(self) -> None:
        await self._db.aclose()

    def _operation(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self._db.operation(self.operation_timeout, ConversationStoreUnavailable)
