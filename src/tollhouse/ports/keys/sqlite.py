"""Gateway keys in a SQLite file: the embedded default, by default the ledger's own file.

As in the ledger's store, sqlite3 blocks, so every statement runs on one dedicated thread
that owns the only connection; the event loop only awaits it. A change (revoke, rotate,
update) reads and writes the row in one `BEGIN IMMEDIATE` transaction, so two admins
rotating the same key at once can't both win.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from tollhouse.ports.keys.rows import COLUMNS, decode_row, encode_row
from tollhouse.ports.sqlite_connection import SQLiteThread

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM gateway_keys"
_INSERT = (
    f"INSERT INTO gateway_keys ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
_UPDATE = (
    f"UPDATE gateway_keys SET {', '.join(f'{column} = ?' for column in COLUMNS)} WHERE key_id = ?"
)

T = TypeVar("T")


class SQLiteKeyStore:
    """Keys in the SQLite file at `path` (created if missing). `busy_timeout` is how long
    a write waits for another process (a gateway's ledger writer) holding the write lock."""

    def __init__(
        self, path: str | os.PathLike[str] = "tollhouse.db", *, busy_timeout: float = 5.0
    ) -> None:
        self.path = path
        self._db = SQLiteThread(
            path,
            busy_timeout,
            KEYS.migrate_sqlite,
            what="key store",
            unavailable=KeyStoreUnavailable,
        )
        self._run = self._db.run
        self._connection = self._db.connection

    async def open(self) -> None:
        await self._run(self._connection)

    async def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        record, secret = mint(spec, _now())
        await self._run(self._insert, record)
        return record, secret

    async def get(self, key_id: str) -> KeyRecord:
        record = await self._run(self._select_one, "key_id = ?", (key_id,))
        if record is None:
            raise KeyNotFound(key_id)
        return record

    async def find_by_secret(self, secret: str) -> KeyRecord | None:
        digest = hash_secret(secret)
        where = "secret_hash = ? OR previous_secret_hash = ?"
        return await self._run(self._select_one, where, (digest, digest))

    async def list(self, *, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        sql = f"{_SELECT}{where} ORDER BY created_at, key_id"
        return await self._run(self._select, sql)

    async def revoke(self, key_id: str) -> KeyRecord:
        return await self._run(self._change, key_id, lambda record: revoked(record, _now()))

    async def rotate(self, key_id: str, grace_seconds: float = 0) -> tuple[KeyRecord, str]:
        issued: builtins.list[str] = []

        def rotate(record: KeyRecord) -> KeyRecord:
            if record.revoked_at is not None:
                raise KeyRevoked(key_id)
            new, secret = rotated(record, _now(), grace_seconds)
            issued.append(secret)
            return new

        record = await self._run(self._change, key_id, rotate)
        return record, issued[0]

    async def update(self, key_id: str, **changes: Any) -> KeyRecord:
        return await self._run(self._change, key_id, lambda record: updated(record, changes))

    async def aclose(self) -> None:
        await self._db.aclose()

    # Everything below runs on the store's own thread.

    def _insert(self, record: KeyRecord) -> None:
        self._connection().execute(_INSERT, encode_row(record, _encode_time))

    def _select_one(self, where: str, params: tuple[Any, ...]) -> KeyRecord | None:
        rows = self._connection().execute(f"{_SELECT} WHERE {where}", params).fetchall()
        return decode_row(rows[0], _decode_time) if rows else None

    def _select(self, sql: str) -> builtins.list[KeyRecord]:
        return [decode_row(row, _decode_time) for row in self._connection().execute(sql)]

    def _change(self, key_id: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = self._select_one("key_id = ?", (key_id,))
            if current is None:
                raise KeyNotFound(key_id)
            new = change(current)
            if new != current:
                conn.execute(_UPDATE, [*encode_row(new, _encode_time), key_id])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return new


def _now() -> datetime:
    return datetime.now(UTC)


def _encode_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _decode_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
