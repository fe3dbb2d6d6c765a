"""The ledger's schema, grown by numbered steps (the simonw/llm habit), for both backends.

Each step is a small function named `mNNN_what` that returns the SQL for one dialect; they
run in the order they are declared, and `_ledger_migrations` records which ones a database
already has, so `migrate_*` applies only what is missing and a second run is a no-op. A
schema change is a new step at the end, never an edit of a step a database may have run.

All pending steps run in one transaction under a lock (SQLite's write lock, a PostgreSQL
advisory lock), so gateways that start together don't race to create the same table, and
a failed step leaves the database as it was.

`migrate_*` serve any schema of ours, not only the ledger's: another port (the keys) passes
its own steps, bookkeeping table and lock key, and shares a database with the ledger
without either seeing the other's steps.

Column types that differ by dialect (`Dialect`) keep what the record means: timestamps are
`timestamptz` or fixed-width UTC ISO 8601 text (which sorts in time order), money is an
unconstrained `numeric` or decimal text (exact either way: batch cache rates already have
ten decimal places per token, more than NUMERIC(20,9) keeps).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    row_id: str
    timestamp: str
    now: str
    boolean: str
    integer: str
    real: str
    money: str
    json: str


SQLITE = Dialect(
    name="sqlite",
    row_id="INTEGER PRIMARY KEY",
    timestamp="TEXT",
    now="CURRENT_TIMESTAMP",
    boolean="INTEGER",
    integer="INTEGER",
    real="REAL",
    money="TEXT",
    json="TEXT",
)
POSTGRES = Dialect(
    name="postgres",
    row_id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    timestamp="TIMESTAMPTZ",
    now="now()",
    boolean="BOOLEAN",
    integer="BIGINT",
    real="DOUBLE PRECISION",
    money="NUMERIC",
    json="JSONB",
)

Step = Callable[[Dialect], list[str]]
MIGRATIONS: list[Step] = []

# Any constant works; this one is "tollhous" in ASCII, unlikely to clash with another app's.
_ADVISORY_LOCK_KEY = 0x746F6C6C686F7573


def migration(step: Step) -> Step:
    MIGRATIONS.append(step)
    return step


@migration
def m001_calls(d: Dialect) -> list[str]:
    # `id` gives a stable order between calls of the same instant; `request_id` is the
    # natural key that makes replays idempotent.
    return [
        f"""
        CREATE TABLE calls (
            id {d.row_id},
            request_id TEXT NOT NULL UNIQUE,
            ts {d.timestamp} NOT NULL,
            client_format TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model_requested TEXT NOT NULL,
            status INTEGER NOT NULL,
            upstream_request_id TEXT,
            key_id TEXT,
            end_user TEXT,
            team TEXT,
            project TEXT,
            session_id TEXT,
            model_served TEXT,
            provider TEXT,
            route TEXT,
            variant TEXT,
            system_prompt_hash TEXT,
            stop_reason TEXT,
            input_tokens {d.integer} NOT NULL,
            output_tokens {d.integer} NOT NULL,
            cache_write_5m_tokens {d.integer} NOT NULL,
            cache_write_1h_tokens {d.integer} NOT NULL,
            cache_read_tokens {d.integer} NOT NULL,
            reasoning_tokens {d.integer} NOT NULL,
            usage_estimated {d.boolean} NOT NULL,
            latency_ms {d.real} NOT NULL,
            ttft_ms {d.real},
            attempts INTEGER NOT NULL,
            fallback_used {d.boolean} NOT NULL,
            cache_hit {d.boolean} NOT NULL,
            cost_usd {d.money},
            error_type TEXT,
            truncated {d.boolean} NOT NULL,
            stream {d.boolean} NOT NULL,
            prompt_text TEXT,
            answer_text TEXT,
            metadata {d.json} NOT NULL
        )
        """
    ]


@migration
def m002_calls_indexes(d: Dialect) -> list[str]:
    # (column, ts) rather than (column): reports ask "this key, this week", and the same
    # index still serves a lookup by the column alone.
    by_time = ["model_served", "key_id", "end_user", "team", "project"]
    return ["CREATE INDEX calls_ts ON calls (ts)"] + [
        f"CREATE INDEX calls_{column}_ts ON calls ({column}, ts)" for column in by_time
    ]


LEDGER_MIGRATIONS_TABLE = "_ledger_migrations"


@migration
def m003_fewer_indexes(d: Dialect) -> list[str]:
    # Measured (bench/ledger.py): every index costs each insert, and the model, team and
    # project indexes served only reports that scan a time range anyway (calls_ts). Kept:
    # time, key and end user, the lookups of `tollhouse logs` and per-customer questions.
    return [
        f"DROP INDEX IF EXISTS calls_{column}_ts" for column in ("model_served", "team", "project")
    ]


def _migrations_table(d: Dialect, table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f"name TEXT PRIMARY KEY, applied_at {d.timestamp} NOT NULL DEFAULT {d.now})"
    )


def migrate_sqlite(
    conn: sqlite3.Connection,
    steps: Sequence[Step] = MIGRATIONS,
    *,
    table: str = LEDGER_MIGRATIONS_TABLE,
) -> list[str]:
    """Apply the steps `conn`'s database lacks, recording them in `table` (a name from our
    code, never from input: it is part of the SQL text); the names applied, in order.
    `conn` must be in autocommit mode (`isolation_level=None`): the transaction is
    managed here."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_migrations_table(SQLITE, table))
        applied = {name for (name,) in conn.execute(f"SELECT name FROM {table}")}
        done = []
        for step in steps:
            if step.__name__ in applied:
                continue
            for statement in step(SQLITE):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {table} (name) VALUES (?)", (step.__name__,))
            done.append(step.__name__)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done


async def migrate_postgres(
    conn: psycopg.AsyncConnection[Any],
    steps: Sequence[Step] = MIGRATIONS,
    *,
    table: str = LEDGER_MIGRATIONS_TABLE,
    lock_key: int = _ADVISORY_LOCK_KEY,
) -> list[str]:
    """Apply the steps the database (in `conn`'s search_path) lacks, recording them in
    `table`, under the advisory lock `lock_key`; the names applied."""
    done = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        await conn.execute(_migrations_table(POSTGRES, table))
        cursor = await conn.execute(f"SELECT name FROM {table}")
        applied = {name for (name,) in await cursor.fetchall()}
        for step in steps:
            if step.__name__ in applied:
                continue
            for statement in step(POSTGRES):
                await conn.execute(statement)
            await conn.execute(f"INSERT INTO {table} (name) VALUES (%s)", (step.__name__,))
            done.append(step.__name__)
    return done
