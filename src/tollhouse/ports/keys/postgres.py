"""Gateway keys on PostgreSQL: shared by every gateway process, like the ledger there.

One connection (ports/postgres_connection.py), opened (and migrated) on first use and
again after any failure. A change (revoke, rotate, update) reads the row
`FOR UPDATE` and writes it in one transaction, so concurrent admins can't both win.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg

from tollhouse.ports.keys.base import KeyNotFound, KeyRevoked, KeyStoreUnavailable
from tollhouse.ports.keys.migrations import KEYS
from tollhouse.ports.keys.record import (
    KeyRecord,
    KeySpec,
    hash_secret,
    mint,
    revoked,
    rotated,
    updated,
)
from tollhouse.ports.keys.rows import COLUMNS, JSON_COLUMNS, decode_row, encode_row
from tollhouse.ports.postgres_connection import PostgresConnection

_SELECT = "SELECT {} FROM gateway_keys".format(
    ", ".join(f"{column}::text" if column in JSON_COLUMNS else column for column in COLUMNS)
)
_VALUES = ", ".join("%s::jsonb" if column in JSON_COLUMNS else "%s" for column in COLUMNS)
_INSERT = f"INSERT INTO gateway_keys ({', '.join(COLUMNS)}) VALUES ({_VALUES})"
_UPDATE = "UPDATE gateway_keys SET ({}) = ROW({}) WHERE key_id = %s".format(
    ", ".join(COLUMNS), _VALUES
)


class PostgresKeyStore:
    """`conninfo` is a libpq connection string or URI. Every operation gives up after
    `operation_timeout` seconds and drops the connection, to be opened afresh next time."""

    def __init__(
        self, conninfo: str, *, connect_timeout: float = 5.0, operation_timeout: float = 10.0
    ) -> None:
        self.conninfo = conninfo
        self.operation_timeout = operation_timeout
        self._db = PostgresConnection(
            conninfo,
            connect_timeout=connect_timeout,
            prepare=KEYS.migrate_postgres,
            what="key store",
        )

    async def open(self) -> None:
        async with self._operation():
            pass

    async def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        record, secret = mint(spec, _now())
        async with self._operation() as conn:
            await conn.execute(_INSERT, encode_row(record, _as_is))
        return record, secret

    async def get(self, key_id: str) -> KeyRecord:
        async with self._operation() as conn:
            record = await _select_one(conn, "key_id = %s", (key_id,))
        if record is None:
            raise KeyNotFound(key_id)
        return record

    async def find_by_secret(self, secret: str) -> KeyRecord | None:
        digest = hash_secret(secret)
        where = "secret_hash = %s OR previous_secret_hash = %s"
        async with self._operation() as conn:
            return await _select_one(conn, where, (digest, digest))

    async def list(self, *, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        async with self._operation() as conn:
            cursor = await conn.execute(f"{_SELECT}{where} ORDER BY created_at, key_id")
            rows = await cursor.fetchall()
        return [decode_row(row, _utc) for row in rows]

    async def revoke(self, key_id: str) -> KeyRecord:
        return await self._change(key_id, lambda record: revoked(record, _now()))

    async def rotate(self, key_id: str, grace_seconds: float = 0) -> tuple[KeyRecord, str]:
        issued: builtins.list[str] = []

        def rotate(record: KeyRecord) -> KeyRecord:
            if record.revoked_at is not None:
                raise KeyRevoked(key_id)
            new, secret = rotated(record, _now(), grace_seconds)
            issued.append(secret)
            return new

        record = await self._change(key_id, rotate)
        return record, issued[0]

    async def update(self, key_id: str, **changes: Any) -> KeyRecord:
        return await self._change(key_id, lambda record: updated(record, changes))

    async def aclose(self) -> None:
        await self._db.aclose()

    async def _change(self, key_id: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
        async with self._operation() as conn, conn.transaction():
            current = await _select_one(conn, "key_id = %s FOR UPDATE", (key_id,))
            if current is None:
                raise KeyNotFound(key_id)
            new = change(current)
            if new != current:
                await conn.execute(_UPDATE, [*encode_row(new, _as_is), key_id])
        return new

    def _operation(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self._db.operation(self.operation_timeout, KeyStoreUnavailable)


async def _select_one(
    conn: psycopg.AsyncConnection[Any], where: str, params: tuple[Any, ...]
) -> KeyRecord | None:
    cursor = await conn.execute(f"{_SELECT} WHERE {where}", params)
    row = await cursor.fetchone()
    return decode_row(row, _utc) if row is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


def _as_is(moment: datetime) -> datetime:
    return moment


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
