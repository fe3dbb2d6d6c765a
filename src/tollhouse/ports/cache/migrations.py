"""The SQLite response store's schema (`RESPONSE_CACHE`), grown by numbered steps like the
ledger's (ports/schema_migrations.py), under its own bookkeeping table, so it may share a
file with the ledger without either waiting on the other's steps.

One row per answer: the encoded `CachedAnswer`, its size (for the byte cap) and the time it
expires (seconds since the epoch), whose index serves both the sweep of expired rows and
dropping the answers nearest their end when a cap is reached.
"""

from __future__ import annotations

from tollhouse.ports.schema_migrations import Dialect, Schema

RESPONSE_CACHE = Schema(
    table="_response_cache_migrations",
    # "tollrcch" in ASCII: distinct from the other stores' locks.
    lock_key=0x746F6C6C72636368,
)


@RESPONSE_CACHE.step
def m001_response_cache(d: Dialect) -> list[str]:
    return [
        f"""
        CREATE TABLE response_cache (
            key TEXT PRIMARY KEY,
            answer BLOB NOT NULL,
            size {d.integer} NOT NULL,
            stale_until {d.real} NOT NULL
        )
        """,
        # (stale_until, size): the sweep, the eviction order and the byte total in one index.
        "CREATE INDEX response_cache_expiry ON response_cache (stale_until, size)",
    ]
