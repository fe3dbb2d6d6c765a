"""The keys' schema, grown by numbered steps like the ledger's and with the same runner
(`ledger.migrations.migrate_*`), under its own bookkeeping table and advisory lock, so the
keys can share a database (even a SQLite file) with the ledger.

One row per key, in `gateway_keys`. Both secret hashes have a unique index: the request
path finds a key by either in one index lookup. The policy parts (limits, budget, caps,
scopes, metadata) are JSON documents, so a new limit kind is a new field, not a migration;
money inside them is a JSON string of the exact decimal.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from tollhouse.ports.ledger.migrations import Dialect, Step, migrate_postgres, migrate_sqlite

if TYPE_CHECKING:
    import psycopg

TABLE = "_keys_migrations"
# "tollkeys" in ASCII: distinct from the ledger's lock, so neither waits on the other.
ADVISORY_LOCK_KEY = 0x746F6C6C6B657973

MIGRATIONS: list[Step] = []


def migration(step: Step) -> Step:
    MIGRATIONS.append(step)
    return step


@migration
def m001_gateway_keys(d: Dialect) -> list[str]:
    return [
        f"""
        CREATE TABLE gateway_keys (
            key_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            previous_secret_hash TEXT UNIQUE,
            previous_secret_valid_until {d.timestamp},
            rotated_from TEXT,
            user_id TEXT,
            team TEXT,
            project TEXT,
            allowed_models {d.json} NOT NULL,
            limits {d.json} NOT NULL,
            budget {d.json} NOT NULL,
            end_users {d.boolean} NOT NULL,
            end_user_limits {d.json} NOT NULL,
            end_user_budget {d.json} NOT NULL,
            caps {d.json} NOT NULL,
            created_at {d.timestamp} NOT NULL,
            expires_at {d.timestamp},
            revoked_at {d.timestamp},
            metadata {d.json} NOT NULL
        )
        """,
        "CREATE INDEX gateway_keys_created_at ON gateway_keys (created_at, key_id)",
    ]


def migrate_keys_sqlite(conn: sqlite3.Connection, steps: list[Step] = MIGRATIONS) -> list[str]:
    return migrate_sqlite(conn, steps, table=TABLE)


async def migrate_keys_postgres(
    conn: psycopg.AsyncConnection[Any], steps: list[Step] = MIGRATIONS
) -> list[str]:
    return await migrate_postgres(conn, steps, table=TABLE, lock_key=ADVISORY_LOCK_KEY)
