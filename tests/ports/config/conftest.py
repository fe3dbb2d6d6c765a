"""Config stores on real databases: a SQLite file in the test's tmp_path, and the real
PostgreSQL server in a schema of the test's own (`postgres_conninfo`, tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore

T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ConfigStore]:
    """Makes stores (unopened) on one database: every call gives a store on the same one."""
    if request.param == "sqlite":
        return lambda: SQLiteConfigStore(tmp_path / "config.db")
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return lambda: PostgresConfigStore(conninfo)


@pytest.fixture
def on_store(new_store: Callable[[], ConfigStore]) -> Callable[..., Any]:
    """Runs `scenario(store)` on an opened store in a fresh event loop; its result."""

    def run(scenario: Callable[[ConfigStore], Awaitable[T]]) -> T:
        async def main() -> T:
            store = new_store()
            await store.open()
            try:
                return await scenario(store)
            finally:
                await store.aclose()

        return asyncio.run(main())

    return run
