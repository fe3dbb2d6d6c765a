"""The keys' schema grows by numbered steps like the ledger's, in its own bookkeeping
table, so keys and ledger can share one database."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg

from tollhouse.ports.keys.migrations import KEYS
from tollhouse.ports.keys.record import KeySpec
from tollhouse.ports.keys.sqlite import SQLiteKeyStore
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

LATEST = [step.__name__ for step in KEYS.steps]


def test_sqlite_migrate_applies_every_step_once(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "k.db", isolation_level=None)) as conn:
        assert KEYS.migrate_sqlite(conn) == LATEST
        assert KEYS.migrate_sqlite(conn) == []
        applied = [name for (name,) in conn.execute("SELECT name FROM _keys_migrations")]
        assert applied == LATEST


def test_postgres_migrate_applies_every_step_once(postgres_conninfo: str) -> None:
    async def migrate_twice() -> tuple[list[str], list[str]]:
        async with await psycopg.AsyncConnection.connect(
            postgres_conninfo, autocommit=True
        ) as conn:
            return await KEYS.migrate_postgres(conn), await KEYS.migrate_postgres(conn)

    assert asyncio.run(migrate_twice()) == (LATEST, [])


def test_keys_and_ledger_share_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "tollhouse.db"

    async def scenario() -> tuple[int, int]:
        ledger, keys = SQLiteLedgerStore(path), SQLiteKeyStore(path)
        try:
            await ledger.open()
            await keys.create(KeySpec(name="k"))
            return await ledger.count(), len(await keys.list())
        finally:
            await ledger.aclose()
            await keys.aclose()

    assert asyncio.run(scenario()) == (0, 1)
    with closing(sqlite3.connect(path)) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"calls", "_ledger_migrations", "gateway_keys", "_keys_migrations"} <= tables
