"""Gets every call record into the ledger store without the request path ever waiting on it.

`submit` is all a call does: a bounded in-memory append, O(1), no await. One background
task takes the records from there in batches (every `flush_interval`, or sooner when
`batch_size` are waiting) and writes each batch in one store transaction.

Nothing is lost silently. A write that takes longer than `write_timeout` counts as a store
failure (a stalled database is noticed in seconds, not after TCP gives up), and while one
is under way `write_stalled_for` says for how long. When the store fails, the batch goes
to the spill file (when there is one) and the writer retries with jittered exponential
backoff; meanwhile the queue keeps draining into the spill, so a long outage costs disk,
not memory. When a retry succeeds the spill is replayed in order and emptied; that is safe
even for a batch whose commit landed just before the failure, because stores skip a
`request_id` they already hold. Without a spill file a failed batch stays queued. Either
way, a record that finds no room (queue full and no spill, spill full) is counted in
`dropped`.

A batch the store *rejects* (`LedgerRejected`: the data, not the store) is written again
one record at a time, so one bad record costs itself (`rejected`), not its batch.

The counters are plain attributes for the metrics endpoint to read:

- `queued`: records `submit` put on the queue
- `written`: records the store took from the queue
- `spilled`: records appended to the spill file
- `replayed`: records the store took from the spill file
- `dropped`: records lost: no room in queue or spill, an unreadable spill line, or still
  queued at the end of an `aclose` that timed out with no spill to put them in
- `rejected`: records the store refused as invalid
- `queue_depth`, `spill_bytes`, `store_available`, `write_stalled_for`, `last_error`: the
  state now
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from tollhouse.ports.ledger.base import LedgerRejected
from tollhouse.ports.ledger.journal import Journal
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.spill import SpillFile
from tollhouse.queue_worker import QueueWorker
from tollhouse.reliability.backoff import backoff_delay


class RecordSink(Protocol):
    """All the writer needs of where records go: a `LedgerStore`, or the JSON call log."""

    async def write_batch(self, records: Sequence[CallRecord]) -> None: ...


class LedgerWriter(QueueWorker):
    """Call `submit` from the event loop's thread; `start` and `aclose` from a coroutine
    on that loop (the task and its shutdown: tollhouse/queue_worker.py). The writer
    neither opens nor closes the store and the spill file: their owner does, the store
    after `aclose` (which may still write to it)."""

    def __init__(
        self,
        store: RecordSink,
        *,
        max_queue: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        spill: SpillFile | None = None,
        retry_base: float = 0.1,
        retry_cap: float = 5.0,
        close_timeout: float = 30.0,
        write_timeout: float = 5.0,
        journal: Journal | None = None,
    ) -> None:
        super().__init__("ledger-writer", close_timeout)
        self.store = store
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.spill = spill
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.write_timeout = write_timeout
        self.journal = journal

        self.queued = 0
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None

        self._queue: deque[CallRecord] = deque()
        self._in_flight: Sequence[CallRecord] = ()
        self._failures = 0  # consecutive store failures; 0 while the store works
        self._retry_at = 0.0  # monotonic time before which the store is left alone
        self._replay_offset = 0  # how far into the spill file the store already has
        self._write_started: float | None = None  # monotonic start of the write under way

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def spill_bytes(self) -> int:
        return self.spill.size if self.spill is not None else 0

    @property
    def store_available(self) -> bool:
        return self._failures == 0

    @property
    def write_stalled_for(self) -> float:
        """Seconds the store has been taking the write under way; 0 when none is."""
        started = self._write_started
        return 0.0 if started is None else time.monotonic() - started

    def submit(self, record: CallRecord) -> bool:
        """Hand `record` to the ledger without waiting. False when it was dropped (counted
        in `dropped`); True when it is queued or, the queue being full, spilled."""
        if self._closed or len(self._queue) >= self.max_queue:
            return self._overflow(record)
        self._queue.append(record)
        self.queued += 1
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        return True

    async def aclose(self) -> None:
        """Write everything still queued, and replay the spill if the store is reachable,
        then stop. After `close_timeout` seconds the rest goes to the spill (or `dropped`):
        a shutdown waits a bounded time for an unreachable store, never forever."""
        if self._closed:
            return
        if not await self._finish():
            self.last_error = f"shutdown timed out after {self.close_timeout}s"
        leftovers = [*self._in_flight, *self._queue]
        self._in_flight = ()
        self._queue.clear()
        if self.spill is not None:
            await self._spill(leftovers)
        else:
            self.dropped += len(leftovers)

    def _overflow(self, record: CallRecord) -> bool:
        if self.spill is not None:
            try:
                # Unsynced: an fsync would block the request path. The next synced append
                # makes it durable; until then the OS holds it through a process crash.
                taken = self.spill.append([record], sync=False)
            except OSError as error:
                self.last_error = f"spill file: {error}"
                taken = 0
            if taken:
                self.spilled += 1
                return True
        self.dropped += 1
        return False

    async def _run(self) -> None:
        while True:
            try:
                if await self._step():
                    return
            except Exception as error:  # a fault here must not end the ledger
                self._store_failed(error)

    async def _step(self) -> bool:
        """One round of work; True when closing and nothing is left that can be done."""
        await self._wait_for_work()
        if self._failures and self.spill is not None:
            # While the store fails, records wait on disk, not in memory; the next try
            # replays them from the spill, in order. (A retry may come at once, jittered:
            # waiting for the backoff to spill would keep a whole stalled write's worth.)
            await self._spill_queue()
        if time.monotonic() < self._retry_at:
            # Without a spill the records wait in the queue for the next try.
            return self.spill is not None and self._closing
        if self._replay_pending() and not await self._replay_batch():
            return False
        batch = self._take_batch()
        if batch:
            sealed = self._seal_journal()
            self._in_flight = batch
            written, unwritten = await self._write(batch)
            self.written += written
            await self._keep(unwritten)
            self._in_flight = ()
            if sealed:
                await self._release_journal()
            return False
        return self._closing and not self._replay_pending()

    async def _wait_for_work(self) -> None:
        now = time.monotonic()
        if now < self._retry_at and self.spill is None:
            # Nothing to do but wait for the next try: the records stay queued.
            await asyncio.sleep(self._retry_at - now)
            return
        if self._closing or len(self._queue) >= self.batch_size:
            return
        if self._replay_pending() and now >= self._retry_at:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.flush_interval):
                await self._wake.wait()

    def _take_batch(self) -> list[CallRecord]:
        queue = self._queue
        return [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]

    async def _write(self, records: Sequence[CallRecord]) -> tuple[int, Sequence[CallRecord]]:
        """Write `records`: how many the store took, and the ones it couldn't take because
        it failed (empty unless it did). Records it rejected are counted and let go."""
        if not records:
            return 0, ()
        self._write_started = time.monotonic()
        try:
            await self._bounded_write(records)
        except LedgerRejected as error:
            self.last_error = f"ledger store rejected a record: {error}"
            if len(records) == 1:
                self.rejected += 1
                return 0, ()
        except TimeoutError:
            self._store_failed(TimeoutError(f"no answer in {self.write_timeout}s"))
            return 0, records
        except Exception as error:
            self._store_failed(error)
            return 0, records
        else:
            self._failures = 0
            return len(records), ()
        finally:
            self._write_started = None
        written = 0
        for index, record in enumerate(records):
            taken, unwritten = await self._write([record])
            written += taken
            if unwritten:
                return written, records[index:]
        return written, ()

    async def _bounded_write(self, records: Sequence[CallRecord]) -> None:
        """The store's `write_batch`, given up after `write_timeout` (TimeoutError). Given up,
        not waited for: a driver cancelled mid-query may itself wait on the stalled server
        (psycopg asks it to cancel the query), so the write is left to end on its own; if it
        did commit, the replay's duplicates are skipped by `request_id`."""
        writing = asyncio.ensure_future(self.store.write_batch(records))
        try:
            done, _ = await asyncio.wait({writing}, timeout=self.write_timeout)
        except BaseException:
            writing.cancel()
            writing.add_done_callback(_ignore_outcome)
            raise
        if not done:
            writing.cancel()
            writing.add_done_callback(_ignore_outcome)
            raise TimeoutError
        writing.result()

    async def _keep(self, records: Sequence[CallRecord]) -> None:
        """Hold records the store couldn't take: in the spill, or back at the queue's head."""
        if self.spill is None:
            self._queue.extendleft(reversed(records))
        elif records:
            await self._spill(records)

    async def _spill(self, records: Sequence[CallRecord]) -> None:
        assert self.spill is not None
        try:
            taken = await asyncio.to_thread(self.spill.append, records)
        except OSError as error:
            self.last_error = f"spill file: {error}"
            taken = 0
        self.spilled += taken
        self.dropped += len(records) - taken

    async def _spill_queue(self) -> None:
        while self._queue:
            batch = self._take_batch()
            sealed = self._seal_journal()
            self._in_flight = batch
            await self._spill(batch)
            self._in_flight = ()
            if sealed:
                await self._release_journal()

    def _seal_journal(self) -> bool:
        """The batch just taken emptied the queue: every record journaled so far is in
        hand, so the journal's active segment can be sealed (see ports/ledger/journal.py)."""
        return self.journal is not None and not self._queue and self.journal.seal()

    async def _release_journal(self) -> None:
        assert self.journal is not None
        await self.journal.release_sealed()

    def _replay_pending(self) -> bool:
        return self.spill is not None and self.spill.size > self._replay_offset

    async def _replay_batch(self) -> bool:
        """Write the next batch of the spill file; False if the store failed."""
        spill = self.spill
        assert spill is not None
        chunk = await asyncio.to_thread(spill.read, self._replay_offset, self.batch_size)
        written, unwritten = await self._write(chunk.records)
        self.replayed += written
        if unwritten:
            return False
        self.dropped += chunk.unreadable
        self._replay_offset = chunk.end
        if spill.truncate_if_unchanged(chunk.end):
            self._replay_offset = 0
        return True

    def _store_failed(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        self._retry_at = time.monotonic() + backoff_delay(
            self._failures, self.retry_base, self.retry_cap
        )
        self._failures += 1


def _ignore_outcome(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio doesn't log it as never retrieved
