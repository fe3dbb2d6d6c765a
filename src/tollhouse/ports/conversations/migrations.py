"""The conversation store's schema (`CONVERSATIONS`), grown by numbered steps like the
ledger's (ports/schema_migrations.py), under its own bookkeeping table and advisory lock, so
it shares the ledger's database (by default its SQLite file) without either waiting on the
other's steps.

One row per stored turn, keyed by its tenant and id. `expires_at` is seconds since the
epoch: compared with the clock of the gateway that reads it, the same in both dialects. The
index on it serves the sweep of expired rows, the one on (tenant, expires_at) a tenant's cap.
"""

from __future__ import annotations

from tollhouse.ports.schema_migrations import Dialect, Schema

CONVERSATIONS = Schema(
    table="_conversations_migrations",
    # "tollconv" in ASCII: distinct from the ledger's and the keys' locks.
    lock_key=0x746F6C6C636F6E76,
)


@CONVERSATIONS.step
def m001_conversation_turns(d: Dialect) -> list[str]:
    document = "BLOB" if d.name == "sqlite" else "BYTEA"
    return [
        f"""
        CREATE TABLE conversation_turns (
            tenant TEXT NOT NULL,
            turn_id TEXT NOT NULL,
            document {document} NOT NULL,
            expires_at {d.real} NOT NULL,
            PRIMARY KEY (tenant, turn_id)
        )
        """,
        "CREATE INDEX conversation_turns_expiry ON conversation_turns (expires_at)",
        "CREATE INDEX conversation_turns_tenant ON conversation_turns (tenant, expires_at)",
    ]
