"""Config versions on PostgreSQL: one store shared by every gateway process.

One connection (ports/postgres_connection.py), opened (and migrated) on first use and
again after any failure. A new version takes the next id with the table locked against
other writers (`EXCLUSIVE` lets readers, polling gateways, go on), so ids never repeat
and never go backwards.
"""

from __future__ import annotations

import builtins
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg

from tollhouse.config.document import content_hash
from tollhouse.ports.config.base import (
    ConfigStoreUnavailable,
    ConfigVersion,
    VersionConflict,
    VersionNotFound,
    VersionSource,
)
from tollhouse.ports.config.migrations import CONFIG
from tollhouse.ports.config.rows import COLUMNS, SELECT, decode_row, encode_row
from tollhouse.ports.postgres_connection import PostgresConnection

_INSERT = (
    f"INSERT INTO config_versions ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)


class PostgresConfigStore:
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
            prepare=CONFIG.migrate_postgres,
            what="config store",
        )

    async def open(self) -> None:
        async with self._operation():
            pass

    async def add(
        self,
        document: dict[str, Any],
        *,
        source: VersionSource,
        note: str = "",
        restores: int | None = None,
        unless_latest_has_same_content: bool = False,
        expect_latest: int | None = None,
    ) -> tuple[ConfigVersion, bool]:
        digest = content_hash(document)
        async with self._operation() as conn, conn.transaction():
            await conn.execute("LOCK TABLE config_versions IN EXCLUSIVE MODE")
            latest = await _select_one(conn, f"{SELECT} ORDER BY id DESC LIMIT 1", ())
            newest = None if latest is None else latest.id
            if expect_latest is not None and newest != expect_latest:
                raise VersionConflict(expect_latest, newest)
            if (
                unless_latest_has_same_content
                and latest is not None
                and latest.content_hash == digest
            ):
                return latest, False
            version = ConfigVersion(
                id=1 if latest is None else latest.id + 1,
                created_at=datetime.now(UTC),
                source=source,
                note=note,
                content_hash=digest,
                document=document,
                restores=restores,
            )
            await conn.execute(_INSERT, encode_row(version, _as_is))
        return version, True

    async def get(self, version_id: int) -> ConfigVersion:
        async with self._operation() as conn:
            version = await _select_one(conn, f"{SELECT} WHERE id = %s", (version_id,))
        if version is None:
            raise VersionNotFound(version_id)
        return version

    async def latest(self) -> ConfigVersion | None:
        async with self._operation() as conn:
            return await _select_one(conn, f"{SELECT} ORDER BY id DESC LIMIT 1", ())

    async def latest_id(self) -> int | None:
        async with self._operation() as conn:
            cursor = await conn.execute("SELECT max(id) FROM config_versions")
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def history(
        self, *, limit: int = 50, before: int | None = None
    ) -> builtins.list[ConfigVersion]:
        params: tuple[int, ...] = (limit,) if before is None else (before, limit)
        where = "" if before is None else " WHERE id < %s"
        sql = f"{SELECT}{where} ORDER BY id DESC LIMIT %s"
        async with self._operation() as conn:
            cursor = await conn.execute(sql, params)
            rows = await cursor.fetchall()
        return [decode_row(row, _utc) for row in rows]

    async def aclose(self) -> None:
        await self._db.aclose()

    def _operation(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self._db.operation(self.operation_timeout, ConfigStoreUnavailable)


async def _select_one(
    conn: psycopg.AsyncConnection[Any], sql: str, params: tuple[Any, ...]
) -> ConfigVersion | None:
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    return decode_row(row, _utc) if row is not None else None


def _as_is(moment: datetime) -> datetime:
    return moment


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
