"""What only the SQLite store has to do: share its file, and keep the event loop free."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

MakeRecord = Callable[..., CallRecord]


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteLedgerStore(tmp_path / "ledger.db")
        await store.open()
        await store.aclose()

    asyncio.run(scenario())
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_other_tools_read_the_ledger_as_plain_sql_while_it_is_written(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    path = tmp_path / "ledger.db"
    record = make_record(1, cost_usd=Decimal("0.0000000375"), metadata={"tier": "gold"})

    async def scenario() -> tuple[object, ...]:
        store = SQLiteLedgerStore(path)
        try:
            await store.write_batch([record])
            with sqlite3.connect(path) as other:
                return tuple(
                    other.execute(
                        "SELECT ts, cost_usd, json_extract(metadata, '$.tier'),"
                        " datetime(ts) FROM calls"
                    ).fetchone()
                )
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == (
        "2026-11-25T12:00:01.000000+00:00",
        "0.0000000375",
        "gold",
        "2026-11-25 12:00:01",
    )


def test_a_large_write_does_not_stall_the_event_loop(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    """The write runs beside the loop, not on it: while it waits for the file's write lock
    (held by another connection, as another process would), the loop keeps serving
    callbacks. A write on the loop thread would block it until busy_timeout and fail.
    How long the loop's longest pause is during a write is a figure for bench/, not here."""
    path = tmp_path / "ledger.db"
    records = [make_record(n, prompt_text="x" * 2000) for n in range(20_000)]

    async def scenario() -> None:
        store = SQLiteLedgerStore(path, busy_timeout=30.0)
        await store.open()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            writing = asyncio.create_task(store.write_batch(records))
            served = 0
            while served < 1000:
                await asyncio.sleep(0)
                served += 1
                assert not writing.done(), "the write finished while the file was locked"
            other.execute("COMMIT")
            await writing
            assert await store.count() == 20_000
        finally:
            if other.in_transaction:
                other.execute("ROLLBACK")
            other.close()
            await store.aclose()

    asyncio.run(scenario())
