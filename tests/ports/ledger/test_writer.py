"""The ledger writer: the request path never waits, and no record is lost without a count."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tests.ports.ledger.tcp_proxy import TcpProxy

from tollhouse.ports.ledger.base import LedgerStore, LedgerUnavailable
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.spill import SpillFile
from tollhouse.ports.ledger.writer import LedgerWriter

MakeRecord = Callable[..., CallRecord]
NewStore = Callable[[], LedgerStore]

# Retries in milliseconds, so an outage and its recovery fit in a test.
FAST = {"flush_interval": 0.01, "retry_base": 0.01, "retry_cap": 0.05}


class FlakyStore:
    """A real store that, while `down`, fails every write as an unreachable database would
    (before the write, or with `fail_after_commit` after it, like a connection lost on the
    way back). It remembers the size of each batch it was given."""

    def __init__(self, inner: LedgerStore) -> None:
        self.inner = inner
        self.down = False
        self.fail_after_commit = False
        self.batch_sizes: list[int] = []

    async def open(self) -> None:
        await self.inner.open()

    async def write_batch(self, records: Sequence[CallRecord]) -> None:
        self.batch_sizes.append(len(records))
        if self.down and not self.fail_after_commit:
            raise LedgerUnavailable("connection refused (test)")
        await self.inner.write_batch(records)
        if self.down:
            raise LedgerUnavailable("connection lost after commit (test)")

    async def count(self) -> int:
        return await self.inner.count()

    async def query(self, **options: Any) -> list[CallRecord]:
        return await self.inner.query(**options)

    async def aclose(self) -> None:
        await self.inner.aclose()


class StuckStore(FlakyStore):
    """A store whose writes never finish: a database that stopped answering."""

    async def write_batch(self, records: Sequence[CallRecord]) -> None:
        await asyncio.Event().wait()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


def test_every_record_submitted_from_many_tasks_reaches_the_store(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = new_store()
        writer = LedgerWriter(store)
        writer.start()

        async def handle_calls(task: int) -> None:
            for n in range(400):
                assert writer.submit(make_record(task * 400 + n))
                if n % 25 == 0:
                    await asyncio.sleep(0)  # let the other calls and the writer run

        await asyncio.gather(*(handle_calls(task) for task in range(50)))
        await writer.aclose()
        assert await store.count() == 20_000
        assert (writer.queued, writer.written, writer.dropped) == (20_000, 20_000, 0)
        await store.aclose()

    run(scenario)


def test_submit_returns_at_once_even_when_the_store_never_answers(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    """Without a clock: submit is a plain function, and with a write stuck in the store it
    still takes every record with no await in between (one that waited never returns)."""

    async def scenario() -> None:
        writer = LedgerWriter(StuckStore(new_store()), close_timeout=0.05)
        writer.start()
        for n in range(writer.batch_size):
            writer.submit(make_record(n))
        await until(lambda: writer.write_stalled_for > 0)

        accepted = [writer.submit(make_record(n)) for n in range(500, 10_500)]

        assert all(accepted)
        assert (writer.queue_depth, writer.written, writer.dropped) == (10_000, 0, 0)
        await writer.aclose()

    assert not inspect.iscoroutinefunction(LedgerWriter.submit)
    run(scenario)


def test_while_the_store_is_down_records_spill_and_are_replayed_when_it_is_back(
    new_store: NewStore, make_record: MakeRecord, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = FlakyStore(new_store())
        store.down = True
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, spill=spill, **FAST)
        writer.start()

        for n in range(1000):
            writer.submit(make_record(n))
        await until(lambda: writer.spilled == 1000)
        assert not writer.store_available
        assert "connection refused" in (writer.last_error or "")
        assert (writer.written, writer.queue_depth, await store.count()) == (0, 0, 0)
        assert writer.spill_bytes > 0

        store.down = False
        await until(lambda: writer.spill_bytes == 0)
        assert writer.store_available
        assert (writer.replayed, writer.dropped) == (1000, 0)
        assert await store.count() == 1000

        await writer.aclose()
        await store.aclose()
        spill.close()

    run(scenario)


def test_a_batch_whose_commit_landed_before_the_failure_is_not_counted_twice(
    new_store: NewStore, make_record: MakeRecord, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = FlakyStore(new_store())
        store.down, store.fail_after_commit = True, True
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, spill=spill, **FAST)
        writer.start()

        for n in range(300):
            writer.submit(make_record(n))
        await until(lambda: writer.spilled >= 300)
        store.down = False
        await until(lambda: writer.spill_bytes == 0)

        assert await store.count() == 300
        await writer.aclose()
        await store.aclose()
        spill.close()

    run(scenario)


def test_postgres_going_away_and_coming_back_loses_no_record(
    postgres_conninfo: str, make_record: MakeRecord, tmp_path: Path
) -> None:
    target = conninfo_to_dict(postgres_conninfo)

    async def scenario() -> None:
        proxy = TcpProxy(str(target.get("host", "127.0.0.1")), int(target.get("port", 5432)))
        await proxy.start()
        store = PostgresLedgerStore(make_conninfo(postgres_conninfo, port=proxy.port))
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, spill=spill, **FAST)
        writer.start()

        for n in range(500):
            writer.submit(make_record(n))
        await until(lambda: writer.written == 500)

        await proxy.cut()
        for n in range(500, 1000):
            writer.submit(make_record(n))
        await until(lambda: writer.spilled >= 500)
        assert not writer.store_available

        await proxy.start()
        await until(lambda: writer.spill_bytes == 0)
        await writer.aclose()
        assert await store.count() == 1000
        assert writer.dropped == 0
        await store.aclose()
        spill.close()
        await proxy.cut()

    run(scenario)


def test_without_a_spill_a_full_queue_drops_exactly_the_overflow(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = new_store()
        writer = LedgerWriter(store, max_queue=100)

        accepted = [writer.submit(make_record(n)) for n in range(130)]

        assert (accepted.count(True), accepted.count(False)) == (100, 30)
        assert (writer.dropped, writer.queue_depth) == (30, 100)
        await writer.aclose()
        assert await store.count() == 100
        await store.aclose()

    run(scenario)


def test_with_a_spill_a_full_queue_spills_the_overflow(
    new_store: NewStore, make_record: MakeRecord, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = new_store()
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, max_queue=100, spill=spill)

        accepted = [writer.submit(make_record(n)) for n in range(130)]

        assert all(accepted)
        assert (writer.spilled, writer.dropped) == (30, 0)
        await writer.aclose()
        assert await store.count() == 130
        assert spill.size == 0
        await store.aclose()
        spill.close()

    run(scenario)


def test_without_a_spill_a_failed_batch_stays_queued_until_the_store_is_back(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = FlakyStore(new_store())
        store.down = True
        writer = LedgerWriter(store, **FAST)
        writer.start()

        for n in range(50):
            writer.submit(make_record(n))
        # A batch is off the queue while its write is under way (in a task of its own).
        await until(lambda: len(store.batch_sizes) >= 3 and writer.queue_depth == 50)
        assert (writer.dropped, await store.count()) == (0, 0)

        store.down = False
        await until(lambda: writer.written == 50)
        assert await store.count() == 50
        await writer.aclose()
        await store.aclose()

    run(scenario)


def test_shutdown_writes_everything_still_queued(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = new_store()
        writer = LedgerWriter(store, batch_size=500, flush_interval=60.0)
        writer.start()
        for n in range(1234):
            writer.submit(make_record(n))

        await writer.aclose()

        assert (await store.count(), writer.queue_depth, writer.written) == (1234, 0, 1234)
        await store.aclose()

    run(scenario)


def test_shutdown_with_the_store_down_leaves_the_rest_in_the_spill_for_the_next_start(
    new_store: NewStore, make_record: MakeRecord, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = FlakyStore(new_store())
        store.down = True
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, spill=spill, **FAST)
        writer.start()
        for n in range(300):
            writer.submit(make_record(n))
        await writer.aclose()
        spill.close()
        assert (await store.count(), writer.spilled, writer.dropped) == (0, 300, 0)

        # The next process: same spill file, the database is back.
        store.down = False
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, spill=spill, **FAST)
        writer.start()
        await until(lambda: writer.spill_bytes == 0)
        assert (await store.count(), writer.replayed) == (300, 300)
        await writer.aclose()
        await store.aclose()
        spill.close()

    run(scenario)


def test_shutdown_that_times_out_without_a_spill_counts_the_rest_as_dropped(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = FlakyStore(new_store())
        store.down = True
        writer = LedgerWriter(store, close_timeout=0.2, **FAST)
        writer.start()
        for n in range(40):
            writer.submit(make_record(n))

        await writer.aclose()

        assert (writer.dropped, writer.queue_depth) == (40, 0)
        assert "timed out" in (writer.last_error or "")
        await store.aclose()

    run(scenario)


def test_shutdown_that_times_out_on_a_stuck_store_spills_the_batch_in_flight_too(
    new_store: NewStore, make_record: MakeRecord, tmp_path: Path
) -> None:
    async def scenario() -> None:
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(StuckStore(new_store()), spill=spill, close_timeout=0.1)
        writer.start()
        for n in range(700):
            writer.submit(make_record(n))
        await asyncio.sleep(0.01)  # the first 500 are now stuck in the store

        await writer.aclose()

        assert (writer.spilled, writer.dropped) == (700, 0)
        assert len(spill.read(0, 1000).records) == 700
        spill.close()

    run(scenario)


def test_a_record_the_store_rejects_costs_only_itself(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = new_store()
        writer = LedgerWriter(store)
        for n in range(10):
            writer.submit(make_record(n, input_tokens=2**70 if n == 4 else 10))

        await writer.aclose()

        assert (await store.count(), writer.written, writer.rejected) == (9, 9, 1)
        assert "rejected" in (writer.last_error or "")
        await store.aclose()

    run(scenario)


def test_a_partial_batch_is_written_after_flush_interval(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = new_store()
        writer = LedgerWriter(store, flush_interval=0.05)
        writer.start()
        for n in range(3):
            writer.submit(make_record(n))

        await until(lambda: writer.written == 3)

        assert await store.count() == 3
        await writer.aclose()
        await store.aclose()

    run(scenario)


def test_batches_hold_at_most_batch_size_records(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = FlakyStore(new_store())
        writer = LedgerWriter(store, batch_size=100)
        writer.start()
        for n in range(1050):
            writer.submit(make_record(n))
        await writer.aclose()

        assert max(store.batch_sizes) == 100
        assert sum(store.batch_sizes) == 1050
        await store.aclose()

    run(scenario)


def test_a_record_submitted_after_shutdown_is_counted_not_silently_lost(
    new_store: NewStore, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        store = new_store()
        writer = LedgerWriter(store)
        await writer.aclose()

        assert writer.submit(make_record(1)) is False
        assert writer.dropped == 1
        await store.aclose()

    run(scenario)


def test_a_write_the_store_never_finishes_fails_after_write_timeout_and_spills(
    new_store: NewStore, make_record: MakeRecord, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = StuckStore(new_store())
        spill = SpillFile(tmp_path / "ledger.spill")
        writer = LedgerWriter(store, spill=spill, write_timeout=0.3, **FAST)
        writer.start()
        for n in range(10):
            writer.submit(make_record(n))
        await until(lambda: writer.write_stalled_for > 0.1)
        assert writer.store_available  # not yet: the write may still finish
        await until(lambda: writer.spilled == 10, within=5)
        assert not writer.store_available
        assert writer.last_error == "TimeoutError: no answer in 0.3s"
        assert writer.queue_depth == 0
        writer.close_timeout = 0.5
        await writer.aclose()
        assert spill.read(0, 100).records == [make_record(n) for n in range(10)]
        spill.close()
        await store.aclose()

    run(scenario)
