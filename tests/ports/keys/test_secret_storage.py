"""The plaintext secret is never stored: only its SHA-256 reaches the database."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import psycopg

from tollhouse.ports.keys.postgres import PostgresKeyStore
from tollhouse.ports.keys.record import KeySpec
from tollhouse.ports.keys.sqlite import SQLiteKeyStore


def test_sqlite_file_holds_the_hash_and_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"

    async def scenario() -> list[str]:
        store = SQLiteKeyStore(path)
        try:
            record, first = await store.create(KeySpec(name="k"))
            _, second = await store.rotate(record.key_id, grace_seconds=60)
            return [first, second]
        finally:
            await store.aclose()

    secrets = asyncio.run(scenario())
    data = b"".join(file.read_bytes() for file in tmp_path.iterdir())  # the db, its WAL and shm
    for secret in secrets:
        assert secret.encode() not in data
        assert secret[3:].encode() not in data  # not even without its "th-"
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in data


def test_postgres_table_holds_the_hash_and_never_the_secret(postgres_conninfo: str) -> None:
    async def scenario() -> str:
        store = PostgresKeyStore(postgres_conninfo)
        try:
            _, secret = await store.create(KeySpec(name="k"))
            return secret
        finally:
            await store.aclose()

    secret = asyncio.run(scenario())
    with psycopg.connect(postgres_conninfo) as conn:
        (dump,) = conn.execute("SELECT string_agg(t::text, '') FROM gateway_keys t").fetchone() or (
            "",
        )
    assert secret[3:] not in dump
    assert hashlib.sha256(secret.encode()).hexdigest() in dump
