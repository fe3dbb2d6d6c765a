"""The batch store on real databases (a SQLite file in tmp_path, the real PostgreSQL in a
schema of the test's own): a batch and a file read back as written, a key's batches
listed newest first, one claim to record a batch among several stores on one database,
a claim never completed taken over once stale, an input file taken once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.ports.scenario import scenario_runner

from tollhouse.ports.batches.base import BatchStore, StoredBatch, StoredFile
from tollhouse.ports.batches.postgres import PostgresBatchStore
from tollhouse.ports.batches.sqlite import SQLiteBatchStore
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], BatchStore]:
    if request.param == "sqlite":
        return lambda: SQLiteBatchStore(tmp_path / "ledger.db")
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return lambda: PostgresBatchStore(conninfo)


@pytest.fixture
def on_store(new_store: Callable[[], BatchStore]) -> Callable[..., Any]:
    return scenario_runner(new_store, open_first=False)


def batch(
    batch_id: str, key_id: str | None, created_at: float, fmt: str = "anthropic"
) -> StoredBatch:
    line = {"custom_id": "a", "body": {"model": "m", "messages": []}, "key_id": key_id}
    return StoredBatch(
        id=batch_id,
        provider_batch_id=batch_id,
        client_format=fmt,
        key_id=key_id,
        provider="anthropic",
        models=["m"],
        headers={"anthropic-version": "2023-06-01"},
        lines=[line],
        created_at=created_at,
    )


def test_a_batch_reads_back_as_written_and_a_keys_batches_list_newest_first(
    on_store: Callable[..., Any],
) -> None:
    async def scenario(store: BatchStore) -> None:
        for n, key in enumerate(["k1", "k1", "k2", None]):
            await store.add_batch(batch(f"b{n}", key, 100.0 + n))
        await store.add_batch(batch("o1", "k1", 200.0, "openai"))
        assert await store.get_batch("b0") == batch("b0", "k1", 100.0)
        assert await store.get_batch("nobody") is None
        assert await store.owned("k1", "anthropic", 10) == ["b1", "b0"]
        assert await store.owned("k1", "anthropic", 1) == ["b1"]
        assert await store.owned(None, "anthropic", 10) == ["b3"]  # an open gateway's
        assert await store.owned("k1", "openai", 10) == ["o1"]
        assert await store.unrecorded(2) == ["b0", "b1"]

    on_store(scenario)


def test_one_store_of_several_wins_the_claim_and_a_stale_claim_is_taken_over(
    new_store: Callable[[], BatchStore],
) -> None:
    async def main() -> None:
        stores = [new_store() for _ in range(4)]
        try:
            await stores[0].add_batch(batch("b", "k", 1.0))
            won = await asyncio.gather(
                *(store.claim("b", f"p{n}", 1000.0, 300.0) for n, store in enumerate(stores))
            )
            assert sorted(won) == [False, False, False, True]
            winner = f"p{won.index(True)}"
            # Not completed: refused while fresh, taken over once stale.
            assert not await stores[0].claim("b", "late", 1200.0, 300.0)
            assert await stores[1].claim("b", "taker", 1301.0, 300.0)
            await stores[2].done("b", winner, 1302.0)  # no longer its claim: no effect
            assert (await stores[0].get_batch("b")).state == "open"  # type: ignore[union-attr]
            await stores[2].done("b", "taker", 1303.0)
            recorded = await stores[3].get_batch("b")
            assert recorded is not None
            assert (recorded.state, recorded.recorded_by, recorded.lines) == (
                "recorded",
                "taker",
                [],
            )
            assert not await stores[0].claim("b", "again", 99999.0, 300.0)
            assert await stores[0].unrecorded(10) == []
        finally:
            for store in stores:
                await store.aclose()

    asyncio.run(main())


def test_an_input_file_is_taken_once_and_given_back_when_its_batch_was_not_made(
    on_store: Callable[..., Any],
) -> None:
    async def scenario(store: BatchStore) -> None:
        lines = [{"custom_id": "g1", "body": {"model": "gpt-4o-mini"}}]
        await store.add_file(StoredFile("f1", "k", "openai", lines, 5.0))
        await store.add_file(StoredFile("out", "k", "openai", None, 6.0))
        assert await store.get_file("f1") == StoredFile("f1", "k", "openai", lines, 5.0)
        assert await store.take_file("f1")
        assert not await store.take_file("f1")
        assert not await store.take_file("out")  # an output file makes no batch
        await store.give_back_file("f1", lines)
        assert await store.take_file("f1")
        assert await store.get_file("nobody") is None

    on_store(scenario)


def test_the_tables_are_the_ledgers_migration_on_the_same_file(tmp_path: Path) -> None:
    async def main() -> None:
        ledger = SQLiteLedgerStore(tmp_path / "ledger.db")
        await ledger.open()
        await ledger.aclose()
        store = SQLiteBatchStore(tmp_path / "ledger.db")
        try:
            await store.add_batch(batch("b", None, 1.0))
            assert await store.owned(None, "anthropic", 5) == ["b"]
        finally:
            await store.aclose()

    asyncio.run(main())
