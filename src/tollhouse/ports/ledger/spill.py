"""Where call records wait while the ledger store can't take them: a local append-only file.

One JSON line per record (msgspec, the `CallRecord` fields by name, so a newer gateway
can still read an older spill). The file is bounded by `max_bytes`: a record that doesn't
fit is refused and the caller counts it as dropped, so a long outage fills a known amount
of disk, not all of it. It outlives the process: a writer started on an existing spill
replays it, and a line torn by a crash mid-append is cut off when the file is opened.

The writer appends from two places (its background task, through a thread, and `submit`
on the event loop when the queue is full), so appends and the size they move are guarded
by a lock; the fsync that makes a batch durable runs outside it. Replay reads only up to
a size taken before reading, and the file is emptied only if nothing was appended since
(`truncate_if_unchanged`), so a record that arrives during a replay is never cut away.

One spill file belongs to one process: opening it takes an exclusive lock (where the OS
has flock), because two writers replaying and truncating the same file would lose records.
`open_spill` lets many processes share one `ledger.spill_path`: each takes the first slot of
its family no other process holds (`ledger.spill`, `ledger.1.spill`, `ledger.2.spill`, ...)
and moves into its own the records of slots no process holds, left by processes that
crashed, so they are replayed too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from tollhouse.ports.ledger.record import CallRecord

if sys.platform != "win32":
    import fcntl

log = logging.getLogger("tollhouse.ledger")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(CallRecord).decode


class SpillFileInUse(RuntimeError):
    """Another process has this spill file open."""


@dataclass(frozen=True, slots=True)
class SpillChunk:
    records: list[CallRecord]
    end: int  # offset just past the last line read; where the next read starts
    unreadable: int  # lines skipped because they don't decode as a CallRecord


class SpillFile:
    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 1 << 30) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if sys.platform != "win32":
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SpillFileInUse(f"{self.path} is open in another process") from None
            self._size = self._cut_torn_tail()
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def size(self) -> int:
        """Bytes in the file: 0 when there is nothing to replay."""
        return self._size

    def append(self, records: Sequence[CallRecord], *, sync: bool = True) -> int:
        """Append `records` in order, as many as fit under `max_bytes` (stopping at the
        first that doesn't; skipping one that can't be encoded); how many were appended.
        With `sync` they are on disk when this returns; without, they are in the OS's cache
        (safe from a process crash, not from a power cut) until the next synced append."""
        lines = []
        for record in records:
            try:
                lines.append(_encode(record) + b"\n")
            except (TypeError, ValueError, OverflowError):  # metadata that isn't JSON
                continue
        with self._lock:
            room = self.max_bytes - self._size
            taken = 0
            for line in lines:
                if len(line) > room:
                    break
                room -= len(line)
                taken += 1
            data = b"".join(lines[:taken])
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            self._size += len(data)
        if sync and taken:
            os.fsync(self._fd)
        return taken

    def read(self, start: int, limit: int) -> SpillChunk:
        """Up to `limit` records from the lines that begin at offset `start` (0, or an `end`
        of an earlier chunk). Blocking: call it off the event loop."""
        stop = self._size
        records: list[CallRecord] = []
        unreadable = 0
        offset = start
        with self.path.open("rb") as file:
            file.seek(start)
            while offset < stop and len(records) < limit:
                line = file.readline()
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                try:
                    records.append(_decode(line))
                except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
                    unreadable += 1
        return SpillChunk(records, offset, unreadable)

    def truncate_if_unchanged(self, size: int) -> bool:
        """Empty the file if it is still `size` bytes long, i.e. a replay that read up to
        `size` has read everything; True if it was emptied."""
        with self._lock:
            if self._size != size:
                return False
            os.ftruncate(self._fd, 0)
            self._size = 0
        os.fsync(self._fd)
        return True

    def close(self) -> None:
        os.close(self._fd)  # also releases the flock

    def take_over(self, other: SpillFile) -> bool:
        """Move all of `other`'s records to the end of this file and empty `other`; False
        (both left as they were) when they don't fit under `max_bytes`. A crash midway
        leaves records in both, which is safe: stores skip a `request_id` they hold."""
        with self._lock, other._lock:
            if self._size + other._size > self.max_bytes:
                return False
            offset = 0
            while offset < other._size:
                block = os.pread(other._fd, min(1 << 20, other._size - offset), offset)
                written = 0
                while written < len(block):
                    written += os.write(self._fd, block[written:])
                offset += len(block)
            self._size += offset
            os.fsync(self._fd)
            os.ftruncate(other._fd, 0)
            other._size = 0
        os.fsync(other._fd)
        return True

    def _cut_torn_tail(self) -> int:
        size = os.fstat(self._fd).st_size
        if size == 0 or os.pread(self._fd, 1, size - 1) == b"\n":
            return size
        position = size
        while position > 0:
            step = min(65536, position)
            block = os.pread(self._fd, step, position - step)
            newline = block.rfind(b"\n")
            if newline >= 0:
                position = position - step + newline + 1
                break
            position -= step
        os.ftruncate(self._fd, position)
        os.fsync(self._fd)
        return position


def spill_slot(path: str | os.PathLike[str], slot: int) -> Path:
    """The file of slot `slot` of the family `path` names: `path` itself for slot 0, else
    the slot number before its suffix (`ledger.spill` -> `ledger.2.spill`)."""
    path = Path(path)
    if slot == 0:
        return path
    return path.with_name(f"{path.stem}.{slot}{path.suffix}")


def _other_slots(path: Path, own: Path) -> list[Path]:
    pattern = re.compile(rf"{re.escape(path.stem)}\.[1-9][0-9]*{re.escape(path.suffix)}")
    family = [path] if path.exists() else []
    if path.parent.is_dir():
        family += sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    return [p for p in family if p != own]


def open_spill(
    path: str | os.PathLike[str], *, max_bytes: int = 1 << 30, take_over: bool = True
) -> SpillFile:
    """This process's spill file in the family `path` names (see the module docstring):
    the first slot no other process holds, holding also (with `take_over`) the records of
    every slot no process holds. Raises OSError when the file can't be created."""
    path = Path(path)
    slot = 0
    while True:
        try:
            spill = SpillFile(spill_slot(path, slot), max_bytes=max_bytes)
            break
        except SpillFileInUse:
            slot += 1
    if not take_over:
        return spill
    for other_path in _other_slots(path, spill.path):
        try:
            other = SpillFile(other_path, max_bytes=max_bytes)
        except (SpillFileInUse, OSError):
            continue  # a live process's own spill, or one that can't be read: left alone
        try:
            moved = other.size
            if moved and not spill.take_over(other):
                log.warning(
                    "spill file %s (%d bytes) left by a stopped gateway doesn't fit in %s "
                    "(ledger.spill_max_bytes); it is replayed by a later start",
                    other_path,
                    moved,
                    spill.path,
                )
            elif moved:
                log.info("took over %d bytes of records from %s", moved, other_path)
        finally:
            other.close()
    return spill
