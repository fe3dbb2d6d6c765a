"""Key stores on real databases: a SQLite file in the test's tmp_path, and the real
PostgreSQL server (TOLLHOUSE_TEST_POSTGRES, default 127.0.0.1:5432 user postgres database
test) in a schema of the test's own, dropped afterwards.

Without a PostgreSQL server the PostgreSQL tests skip locally, with the reason; under CI
(CI=true) they fail, since a key backend that went untested is not a pass.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tollhouse.ports.keys.base import KeyStore
from tollhouse.ports.keys.postgres import PostgresKeyStore
from tollhouse.ports.keys.sqlite import SQLiteKeyStore

T = TypeVar("T")

POSTGRES = os.environ.get(
    "TOLLHOUSE_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        psycopg.connect(POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL not reachable at {POSTGRES!r}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES


@pytest.fixture
def postgres_conninfo(postgres_server: str) -> Iterator[str]:
    """A connection string whose search_path is a fresh, empty schema."""
    schema = f"th_keys_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield make_conninfo(postgres_server, options=f"-c search_path={schema}")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], KeyStore]:
    """Makes stores (unopened) on one database: every call gives a store on the same one."""
    if request.param == "sqlite":
        return lambda: SQLiteKeyStore(tmp_path / "keys.db")
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return lambda: PostgresKeyStore(conninfo)


@pytest.fixture
def on_store(new_store: Callable[[], KeyStore]) -> Callable[..., Any]:
    """Runs `scenario(store)` on an opened store in a fresh event loop; its result."""

    def run(scenario: Callable[[KeyStore], Awaitable[T]]) -> T:
        async def main() -> T:
            store = new_store()
            await store.open()
            try:
                return await scenario(store)
            finally:
                await store.aclose()

        return asyncio.run(main())

    return run
