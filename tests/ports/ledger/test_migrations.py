"""The ledger schema grows by numbered steps, applied once each, on both backends."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg

from tollhouse.ports.ledger.migrations import LEDGER
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

LATEST = [step.__name__ for step in LEDGER.steps]
INDEXES = {"calls_ts", "calls_key_id_ts", "calls_end_user_ts"}
A_ROW = (
    "INSERT INTO calls (request_id, ts, client_format, endpoint, model_requested, status,"
    " input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens,"
    " cache_read_tokens, reasoning_tokens, usage_estimated, latency_ms, attempts,"
    " fallback_used, cache_hit, truncated, stream, metadata) VALUES ('req_old',"
    " '2026-01-01T00:00:00.000000+00:00', 'openai', '/v1/chat/completions', 'gpt-4o-mini',"
    " 200, 1, 2, 0, 0, 0, 0, {false}, 1.5, 1, {false}, {false}, {false}, {false}, '{{}}')"
)


def test_steps_are_numbered_in_the_order_they_run() -> None:
    assert all(re.fullmatch(r"m\d{3}_[a-z0-9_]+", name) for name in LATEST)
    assert [int(name[1:4]) for name in LATEST] == list(range(1, len(LATEST) + 1))


def sqlite_connection(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def sqlite_indexes(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls'"
    )
    return {name for (name,) in rows if not name.startswith("sqlite_autoindex")}


def test_sqlite_migrate_applies_every_step_and_records_it(tmp_path: Path) -> None:
    with closing(sqlite_connection(tmp_path / "l.db")) as conn:
        assert LEDGER.migrate_sqlite(conn) == LATEST
        applied = [name for (name,) in conn.execute("SELECT name FROM _ledger_migrations")]
        assert applied == LATEST
        assert sqlite_indexes(conn) == INDEXES


def test_sqlite_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    with closing(sqlite_connection(tmp_path / "l.db")) as conn:
        LEDGER.migrate_sqlite(conn)
        schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        assert LEDGER.migrate_sqlite(conn) == []
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_sqlite_database_at_step_1_upgrades_to_the_latest_keeping_its_calls(
    tmp_path: Path,
) -> None:
    with closing(sqlite_connection(tmp_path / "l.db")) as conn:
        assert LEDGER.migrate_sqlite(conn, LEDGER.steps[:1]) == LATEST[:1]
        conn.execute(A_ROW.format(false=0))

    async def reopen() -> int:
        store = SQLiteLedgerStore(tmp_path / "l.db")
        try:
            return await store.count()
        finally:
            await store.aclose()

    assert asyncio.run(reopen()) == 1
    with closing(sqlite_connection(tmp_path / "l.db")) as conn:
        applied = [name for (name,) in conn.execute("SELECT name FROM _ledger_migrations")]
        assert applied == LATEST
        assert sqlite_indexes(conn) == INDEXES


async def postgres_state(conn: psycopg.AsyncConnection[object]) -> tuple[list[str], set[str]]:
    cursor = await conn.execute("SELECT name FROM _ledger_migrations ORDER BY name")
    applied = [str(name) for (name,) in await cursor.fetchall()]
    cursor = await conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'calls'"
        " AND schemaname = current_schema() AND indexname LIKE 'calls_%'"
    )
    constraints = {"calls_pkey", "calls_request_id_key"}
    return applied, {str(name) for (name,) in await cursor.fetchall()} - constraints


def test_postgres_migrate_applies_every_step_and_twice_is_a_no_op(postgres_conninfo: str) -> None:
    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(
            postgres_conninfo, autocommit=True
        ) as conn:
            assert await LEDGER.migrate_postgres(conn) == LATEST
            assert await LEDGER.migrate_postgres(conn) == []
            applied, indexes = await postgres_state(conn)
            assert applied == LATEST
            assert indexes == INDEXES

    asyncio.run(scenario())


def test_postgres_database_at_step_1_upgrades_to_the_latest_keeping_its_calls(
    postgres_conninfo: str,
) -> None:
    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(
            postgres_conninfo, autocommit=True
        ) as conn:
            assert await LEDGER.migrate_postgres(conn, LEDGER.steps[:1]) == LATEST[:1]
            await conn.execute(A_ROW.format(false="false"))
            store = PostgresLedgerStore(postgres_conninfo)
            try:
                assert await store.count() == 1
            finally:
                await store.aclose()
            applied, indexes = await postgres_state(conn)
            assert applied == LATEST
            assert indexes == INDEXES

    asyncio.run(scenario())


def test_postgres_gateways_starting_together_apply_each_step_once(postgres_conninfo: str) -> None:
    async def migrate_one() -> list[str]:
        async with await psycopg.AsyncConnection.connect(
            postgres_conninfo, autocommit=True
        ) as conn:
            return await LEDGER.migrate_postgres(conn)

    async def scenario() -> list[list[str]]:
        return list(await asyncio.gather(*(migrate_one() for _ in range(4))))

    results = asyncio.run(scenario())
    assert sorted(results) == [[], [], [], LATEST]
