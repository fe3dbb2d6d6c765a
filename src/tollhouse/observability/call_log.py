"""The structured call log: one JSON line per call, the same record the ledger keeps.

It is a `RecordSink` behind its own `LedgerWriter`, so it gets the ledger's batching for
free: the request path only appends to a queue, and a background task encodes a batch and
writes it in one system call, on a worker thread (a slow disk or a blocked pipe on stdout
stalls the log, not the calls). Records arrive already scrubbed (accounting/call_record.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import IO

import msgspec

from tollhouse.ports.ledger.record import CallRecord

_encode = msgspec.json.Encoder(decimal_format="string").encode


class JsonLinesSink:
    """Writes to `destination`: "stdout", "stderr", or a file path (appended to, created
    with mode 0600 since records name users and sessions)."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self._file: IO[bytes] | None = None
        self._owned = False

    def _open(self) -> IO[bytes]:
        if self._file is None:
            if self.destination == "stdout":
                self._file = sys.stdout.buffer
            elif self.destination == "stderr":
                self._file = sys.stderr.buffer
            else:
                fd = os.open(self.destination, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._file = os.fdopen(fd, "ab", buffering=0)
                self._owned = True
        return self._file

    async def write_batch(self, records: Sequence[CallRecord]) -> None:
        data = b"".join(_encode(record) + b"\n" for record in records)
        await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        file = self._open()
        file.write(data)
        file.flush()

    def close(self) -> None:
        if self._file is not None and self._owned:
            self._file.close()
        self._file = None
