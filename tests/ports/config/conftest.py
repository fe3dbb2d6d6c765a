"""Config stores on real databases: a SQLite file in the test's tmp_path, and the real
PostgreSQL server in a schema of the test's own (`postgres_conninfo`, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.ports.scenario import scenario_runner

from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore


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
    return scenario_runner(new_store)
