"""The `ledger` fixture of the CLI tests: one real ledger per backend (SQLite, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.ledger_cli import Ledger

from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        return Ledger(["--sqlite", str(path)], lambda: SQLiteLedgerStore(path))
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return Ledger(["--postgres", conninfo], lambda: PostgresLedgerStore(conninfo))
