"""The batch store in the ledger's SQLite file (its own connection on a thread of its
own, as every embedded store; the tables are the ledger's migration steps)."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import orjson

from tollhouse.ports.batches.base import BatchStoreUnavailable, StoredBatch, StoredFile
from tollhouse.ports.batches.sql import (
    Statements,
    batch_params,
    batch_row,
    file_params,
    file_row,
    owned_params,
)
from tollhouse.ports.ledger.migrations import LEDGER
from tollhouse.ports.sqlite_connection import SQLiteThread

_SQL = Statements("?", "IS")


def _prepare(conn: sqlite3.Connection) -> None:
    LEDGER.migrate_sqlite(conn)


class SQLiteBatchStore:
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self._db = SQLiteThread(
            path, busy_timeout, _prepare, what="batch store", unavailable=BatchStoreUnavailable
        )

    async def add_batch(self, batch: StoredBatch) -> None:
        await self._db.run(self._execute, _SQL.add_batch, batch_params(batch))

    async def get_batch(self, batch_id: str) -> StoredBatch | None:
        row = await self._db.run(self._one, _SQL.get_batch, (batch_id,))
        return None if row is None else batch_row(row)

    async def owned(self, key_id: str | None, client_format: str, limit: int) -> list[str]:
        rows = await self._db.run(self._all, _SQL.owned, owned_params(key_id, client_format, limit))
        return [row[0] for row in rows]

    async def unrecorded(self, limit: int) -> list[str]:
        return [row[0] for row in await self._db.run(self._all, _SQL.unrecorded, (limit,))]

    async def claim(self, batch_id: str, by: str, now: float, stale_after: float) -> bool:
        params = (by, now, batch_id, now - stale_after)
        return await self._db.run(self._execute, _SQL.claim, params) == 1

    async def done(self, batch_id: str, by: str, now: float) -> None:
        await self._db.run(self._execute, _SQL.done, (now, batch_id, by))

    async def add_file(self, file: StoredFile) -> None:
        await self._db.run(self._execute, _SQL.add_file, file_params(file))

    async def get_file(self, file_id: str) -> StoredFile | None:
        row = await self._db.run(self._one, _SQL.get_file, (file_id,))
        return None if row is None else file_row(row)

    async def take_file(self, file_id: str) -> bool:
        return await self._db.run(self._execute, _SQL.take_file, (file_id,)) == 1

    async def give_back_file(self, file_id: str, lines: list[dict[str, Any]]) -> None:
        params = (orjson.dumps(lines).decode(), file_id)
        await self._db.run(self._execute, _SQL.give_back_file, params)

    async def aclose(self) -> None:
        await self._db.aclose()

    # Below: on the store's own thread; autocommit, one statement one transaction.

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._db.connection().execute(sql, params).rowcount

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.connection().execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._db.connection().execute(sql, params).fetchall()
