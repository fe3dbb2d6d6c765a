"""Config versions in a SQLite file: the embedded default, by default the keys' file.

Like the other embedded stores, every statement runs on the store's own thread
(`SQLiteThread`). A new version takes the next id inside one `BEGIN IMMEDIATE`
transaction, so two writers (two gateways, or a gateway and the CLI) never take the same.
"""

from __future__ import annotations

import builtins
import os
from datetime import UTC, datetime
from typing import Any

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
from tollhouse.ports.sqlite_connection import SQLiteThread

_INSERT = (
    f"INSERT INTO config_versions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


class SQLiteConfigStore:
    """Versions in the SQLite file at `path` (created if missing)."""

    def __init__(
        self, path: str | os.PathLike[str] = "tollhouse.db", *, busy_timeout: float = 5.0
    ) -> None:
        self.path = path
        self._db = SQLiteThread(
            path,
            busy_timeout,
            CONFIG.migrate_sqlite,
            what="config store",
            unavailable=ConfigStoreUnavailable,
        )

    async def open(self) -> None:
        await self._db.run(self._db.connection)

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
        return await self._db.run(
            self._add,
            document,
            source,
            note,
            restores,
            unless_latest_has_same_content,
            expect_latest,
        )

    async def get(self, version_id: int) -> ConfigVersion:
        rows = await self._db.run(self._select, f"{SELECT} WHERE id = ?", (version_id,))
        if not rows:
            raise VersionNotFound(version_id)
        return rows[0]

    async def latest(self) -> ConfigVersion | None:
        rows = await self._db.run(self._select, f"{SELECT} ORDER BY id DESC LIMIT 1", ())
        return rows[0] if rows else None

    async def latest_id(self) -> int | None:
        return await self._db.run(self._latest_id)

    async def history(
        self, *, limit: int = 50, before: int | None = None
    ) -> builtins.list[ConfigVersion]:
        if before is None:
            return await self._db.run(self._select, f"{SELECT} ORDER BY id DESC LIMIT ?", (limit,))
        sql = f"{SELECT} WHERE id < ? ORDER BY id DESC LIMIT ?"
        return await self._db.run(self._select, sql, (before, limit))

    async def aclose(self) -> None:
        await self._db.aclose()

    # Everything below runs on the store's own thread.

    def _select(self, sql: str, params: tuple[Any, ...]) -> builtins.list[ConfigVersion]:
        rows = self._db.connection().execute(sql, params).fetchall()
        return [decode_row(row, datetime.fromisoformat) for row in rows]

    def _latest_id(self) -> int | None:
        row = self._db.connection().execute("SELECT max(id) FROM config_versions").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _add(
        self,
        document: dict[str, Any],
        source: VersionSource,
        note: str,
        restores: int | None,
        unless_same: bool,
        expect_latest: int | None,
    ) -> tuple[ConfigVersion, bool]:
        conn = self._db.connection()
        digest = content_hash(document)
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(f"{SELECT} ORDER BY id DESC LIMIT 1").fetchall()
            latest = decode_row(rows[0], datetime.fromisoformat) if rows else None
            newest = None if latest is None else latest.id
            if expect_latest is not None and newest != expect_latest:
                raise VersionConflict(expect_latest, newest)
            if unless_same and latest is not None and latest.content_hash == digest:
                conn.execute("COMMIT")
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
            conn.execute(_INSERT, encode_row(version, _encode_time))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return version, True


def _encode_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
