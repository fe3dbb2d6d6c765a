"""The keys' schema (`KEYS`), grown by numbered steps like the ledger's
(`ports/schema_migrations.py`), under its own bookkeeping table and advisory lock, so the
keys can share a database (even a SQLite file) with the ledger.

One row per key, in `gateway_keys`. Both secret hashes have a unique index: the request
path finds a key by either in one index lookup. The policy parts (limits, budget, caps,
scopes, metadata) are JSON documents, so a new limit kind is a new field, not a migration;
money inside them is a JSON string of the exact decimal.
"""

from __future__ import annotations

from tollhouse.ports.schema_migrations import Dialect, Schema

KEYS = Schema(
    table="_keys_migrations",
    # "tollkeys" in ASCII: distinct from the ledger's lock, so neither waits on the other.
    lock_key=0x746F6C6C6B657973,
)


@KEYS.step
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


@KEYS.step
def m002_key_scopes(d: Dialect) -> list[str]:
    # What a key may do beyond calling models (KeyRecord.scopes); none for existing keys.
    return [f"ALTER TABLE gateway_keys ADD COLUMN scopes {d.json} NOT NULL DEFAULT '[]'"]
