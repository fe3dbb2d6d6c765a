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


@CONFIG.step
def m002_eval_results(d: Dialect) -> list[str]:
    """One row per target of each `tollhouse eval` run (evals/store.py). `IF NOT EXISTS`:
    before this step the table had a schema of its own (`_evals_migrations`), and a
    database that ran it already has the same table."""
    return [
        f"""
        CREATE TABLE IF NOT EXISTS eval_results (
            id {d.row_id},
            run_id TEXT NOT NULL,
            created_at {d.timestamp} NOT NULL,
            suite_name TEXT NOT NULL,
            suite_hash TEXT NOT NULL,
            target TEXT NOT NULL,
            model TEXT NOT NULL,
            variant TEXT,
            config_version TEXT,
            passed {d.boolean} NOT NULL,
            pass_rate {d.real} NOT NULL,
            runs {d.integer} NOT NULL,
            cost_per_case_usd {d.money},
            latency_p50_ms {d.real},
            latency_p95_ms {d.real},
            figures {d.json} NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS eval_results_suite_hash"
        " ON eval_results (suite_hash, created_at)",
        "CREATE INDEX IF NOT EXISTS eval_results_suite_name"
        " ON eval_results (suite_name, created_at)",
    ]
