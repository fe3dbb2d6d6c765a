"""Ledger stores on real databases: a SQLite file in the test's tmp_path, and the real
PostgreSQL server in a schema of the test's own (`postgres_conninfo`, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.ports.scenario import scenario_runner

from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], LedgerStore]:
    """Makes stores (unopened) on one database: every call gives a store on the same one."""
    if request.param == "sqlite":
        return lambda: SQLiteLedgerStore(tmp_path / "ledger.db")
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return lambda: PostgresLedgerStore(conninfo)


@pytest.fixture
def on_store(new_store: Callable[[], LedgerStore]) -> Callable[..., Any]:
    """Runs `scenario(store)` on an opened store in a fresh event loop; its result."""
    return scenario_runner(new_store)


@pytest.fixture
def make_record() -> Callable[..., CallRecord]:
    """A plausible record; `n` makes request_id and ts distinct (ts = T0 + n seconds)."""

    def make(n: int = 0, **fields: Any) -> CallRecord:
        values: dict[str, Any] = {
            "request_id": f"req_{n:06d}",
            "ts": T0 + timedelta(seconds=n),
            "client_format": "anthropic",
            "endpoint": "/v1/messages",
            "model_requested": "claude-haiku-4-5",
            "model_served": "claude-haiku-4-5-20251001",
            "provider": "anthropic",
            "status": 200,
            "key_id": "key_a",
            "input_tokens": 120,
            "output_tokens": 30,
            "latency_ms": 812.5,
            "cost_usd": Decimal("0.000270"),
        }
        values.update(fields)
        return CallRecord(**values)

    return make
