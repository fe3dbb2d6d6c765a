"""Schemas that grow by numbered steps (the simonw/llm habit), on SQLite and PostgreSQL alike.

A `Schema` is one port's list of steps, each a small function named `mNNN_what` that returns
the SQL for one dialect, registered in order with its `step` decorator; its bookkeeping table
records which steps a database already has, so `migrate_sqlite` / `migrate_postgres` apply
only what is missing and a second run is a no-op. A schema change is a new step at the end,
never an edit of a step a database may have run. Each schema has its own bookkeeping table
and advisory lock, so several (the ledger's, the keys') share one database without either
seeing, or waiting on, the other's steps.

All pending steps run in one transaction under a lock (SQLite's write lock, a PostgreSQL
advisory lock), so gateways that start together don't race to create the same table, and
a failed step leaves the database as it was.

Column types that differ by dialect (`Dialect`) keep what the record means: timestamps are
`timestamptz` or fixed-width UTC ISO 8601 text (which sorts in time order), money is an
unconstrained `numeric` or decimal text (exact either way: batch cache rates already have
ten decimal places per token, more than NUMERIC(20,9) keeps).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class Schema:
    """One port's schema: its steps in order, the table that records which a database has
    (a name from our code, never from input: it is part of the SQL text), and the
    PostgreSQL advisory lock its migrations run under."""

    table: str
    lock_key: int
    steps: list[Step] = field(default_factory=list)

    def step(self, step: Step) -> Step:
        """Register `step` as the schema's next step (a decorator)."""
        self.steps.append(step)
        return step

    def migrate_sqlite(
        self, conn: sqlite3.Connection, steps: Sequence[Step] | None = None
    ) -> list[str]:
        """Apply the steps (all by default) `conn`'s database lacks; the names applied, in
        order. `conn` must be in autocommit mode (`isolation_level=None`): the transaction
        is managed here."""
        return _migrate_sqlite(conn, self.steps if steps is None else steps, self.table)

    async def migrate_postgres(
        self, conn: psycopg.AsyncConnection[Any], steps: Sequence[Step] | None = None
    ) -> list[str]:
        """Apply the steps (all by default) the database in `conn`'s search_path lacks,
        under the schema's advisory lock; the names applied, in order."""
        chosen = self.steps if steps is None else steps
        return await _migrate_postgres(conn, chosen, self.table, self.lock_key)


def _migrations_table(d: Dialect, table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f"name TEXT PRIMARY KEY, applied_at {d.timestamp} NOT NULL DEFAULT {d.now})"
    )


def _migrate_sqlite(conn: sqlite3.Connection, steps: Sequence[Step], table: str) -> list[str]:
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


async def _migrate_postgres(
    conn: psycopg.AsyncConnection[Any], steps: Sequence[Step], table: str, lock_key: int
) -> list[str]:
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
