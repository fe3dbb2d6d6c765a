"""`ledger.durability: synced`: every record on disk before its answer's last byte leaves.

The journal is two spill files of this process's spill family (ports/ledger/spill.py), an
active segment and a sealed one. `append` adds a record to the active segment and returns a
future that resolves once it is fsync'd: records arriving while an fsync runs wait for the
next, so one fsync makes a whole group durable (group commit). The records also go on the
writer's queue as usual; the journal is only for a crash. When the writer takes a batch that
empties its queue, everything in the active segment is in that batch or an earlier one:
`seal` swaps the segments, and once that batch is in the store (or the spill),
`release_sealed` empties the sealed one. A crash leaves the segments unheld, so the next
start takes their records over into its spill and replays them (duplicates of what reached
the store are skipped by `request_id`).
"""

from __future__ import annotations

import asyncio
import os

from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.spill import SpillFile, open_spill


class Journal:
    """Call everything from the event loop's thread."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int) -> None:
        self._active = open_spill(path, max_bytes=max_bytes, take_over=False)
        try:
            self._sealed = open_spill(path, max_bytes=max_bytes, take_over=False)
        except BaseException:
            self._active.close()
            raise
        self._pending: list[CallRecord] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._group: asyncio.Future[None] | None = None  # the group being written, if any
        self._group_segment: SpillFile | None = None  # where it is being written
        self._sealed_dirty = False
        self.refused = 0  # records the journal had no room for (durable only once written)

    @property
    def size(self) -> int:
        return self._active.size + self._sealed.size

    def append(self, record: CallRecord) -> asyncio.Future[None]:
        """Journal `record`; the future resolves once it is on disk (or couldn't be)."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append(record)
        self._waiters.append(done)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        return done

    def seal(self) -> bool:
        """The writer's queue is empty: what the active segment holds is all in hand.
        Swap the segments, if the sealed one is free; True when it did."""
        if self._sealed_dirty:
            return False
        self._active, self._sealed = self._sealed, self._active
        self._sealed_dirty = True
        return True

    async def release_sealed(self) -> None:
        """The batch taken when `seal` returned True is in the store or the spill."""
        while self._group is not None and self._group_segment is self._sealed:
            # A group taken before the swap is still being written into the sealed segment.
            await asyncio.shield(self._group)
        self._sealed.truncate_if_unchanged(self._sealed.size)
        self._sealed_dirty = False

    async def aclose(self, *, clear: bool) -> None:
        """Finish the fsync under way; with `clear` (everything is in the store or the
        spill) empty both segments; then close them."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        for segment in (self._active, self._sealed):
            if clear:
                segment.truncate_if_unchanged(segment.size)
            segment.close()

    async def _flush(self) -> None:
        try:
            while self._pending:
                records, self._pending = self._pending, []
                waiters, self._waiters = self._waiters, []
                self._group_segment = segment = self._active
                self._group = group = asyncio.get_running_loop().create_future()
                try:
                    taken = await asyncio.to_thread(segment.append, records)
                except OSError:
                    taken = 0
                finally:
                    self._group = self._group_segment = None
                    group.set_result(None)
                self.refused += len(records) - taken
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        finally:
            self._flushing = None
