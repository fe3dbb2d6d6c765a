"""The batch store in the ledger's PostgreSQL database (one connection of its own, as
every shared store; the tables are the ledger's migration steps)."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg

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
from tollhouse.ports.postgres_connection import PostgresConnection

_SQL = Statements("%s", "IS NOT DISTINCT FROM")


async def _prepare(conn: psycopg.AsyncConnection[Any]) -> None:
    await LEDGER.migrate_postgres(conn)


class PostgresBatchStore:
    """Every operation gives up after `operation_timeout` seconds."""

    def __init__(
        self, conninfo: str, *, connect_timeout: float = 5.0, operation_timeout: float = 10.0
    ) -> None:
        self.operation_timeout = operation_timeout
        self._db = PostgresConnection(
            conninfo, connect_timeout=connect_timeout, prepare=_prepare, what="batch store"
        )

    async def add_batch(self, batch: StoredBatch) -> None:
        await self._execute(_SQL.add_batch, batch_params(batch))

    async def get_batch(self, batch_id: str) -> StoredBatch | None:
        rows = await self._rows(_SQL.get_batch, (batch_id,))
        return batch_row(rows[0]) if rows else None

    async def owned(self, key_id: str | None, client_format: str, limit: int) -> list[str]:
        rows = await self._rows(_SQL.owned, owned_params(key_id, client_format, limit))
        return [row[0] for row in rows]

    async def unrecorded(self, limit: int) -> list[str]:
        return [row[0] for row in await self._rows(_SQL.unrecorded, (limit,))]

    async def claim(self, batch_id: str, by: str, now: float, stale_after: float) -> bool:
        return await self._execute(_SQL.claim, (by, now, batch_id, now - stale_after)) == 1

    async def done(self, batch_id: str, by: str, now: float) -> None:
        await self._execute(_SQL.done, (now, batch_id, by))

    async def add_file(self, file: StoredFile) -> None:
        await self._execute(_SQL.add_file, file_params(file))

    async def get_file(self, file_id: str) -> StoredFile | None:
        rows = await self._rows(_SQL.get_file, (file_id,))
        return file_row(rows[0]) if rows else None

    async def take_file(self, file_id: str) -> bool:
        return await self._execute(_SQL.take_file, (file_id,)) == 1

    async def give_back_file(self, file_id: str, lines: list[dict[str, Any]]) -> None:
        params = (orjson.dumps(lines).decode(), file_id)
        await self._execute(_SQL.give_back_file, params)

    async def aclose(self) -> None:
        await self._db.aclose()

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        async with self._db.operation(self.operation_timeout, BatchStoreUnavailable) as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self._db.operation(self.operation_timeout, BatchStoreUnavailable) as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()
