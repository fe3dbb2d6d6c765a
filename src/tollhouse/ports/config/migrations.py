"""The config store's schema (`CONFIG`), grown by numbered steps like the ledger's and the
keys' (`ports/schema_migrations.py`), under its own bookkeeping table and advisory lock,
so it shares a database (by default the keys' SQLite file) with them.

`document` is JSON kept as TEXT on both backends, not `jsonb`: PostgreSQL's `jsonb`
reorders keys, and the order of `models:` and `providers:` is what `/v1/models` lists, so
a rollback must bring it back as written.

Another part of the gateway that keeps its data in this store (eval results, say) adds
its tables as new steps at the END of this list.
"""

from __future__ import annotations

from tollhouse.ports.schema_migrations import Dialect, Schema

CONFIG = Schema(
    table="_config_migrations",
    # "tollconf" in ASCII: distinct from the ledger's and the keys' locks.
    lock_key=0x746F6C6C636F6E66,
)


@CONFIG.step
def m001_config_versions(d: Dialect) -> list[str]:
    return [
        f"""
        CREATE TABLE config_versions (
            id {d.integer} PRIMARY KEY,
            created_at {d.timestamp} NOT NULL,
            source TEXT NOT NULL,
            note TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            restores {d.integer},
            document TEXT NOT NULL
        )
        """,
    ]
