"""The ledger in a SQLite file: the embedded default, nothing to run beside the gateway.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the only
connection; the event loop only awaits it. WAL with `synchronous=NORMAL` lets readers
(`tollhouse logs`, another tool with the file open) work while the writer commits, and
makes each commit an append to the log instead of an fsync of the database.

Values are stored so the file stays useful to other tools: `ts` as fixed-width UTC ISO
8601 text (it sorts in time order and SQLite's date functions read it), `cost_usd` as
plain decimal text (exact; `CAST(cost_usd AS REAL)` for a quick sum), `metadata` as JSON
text (`json_extract` works on it).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from tollhouse.ports.ledger.base import LedgerRejected, LedgerUnavailable, select_sql
from tollhouse.ports.ledger.migrations import migrate_sqlite
from tollhouse.ports.ledger.record import CallRecord

_FIELDS = CallRecord.__struct_fields__
_COLUMNS = ", ".join(_FIELDS)
_TS = _FIELDS.index("ts")
_COST = _FIELDS.index("cost_usd")
_METADATA = _FIELDS.index("metadata")
_BOOLEANS = [
    index for index, field in enumerate(msgspec.structs.fields(CallRecord)) if field.type is bool
]
_INSERT = (
    f"INSERT INTO calls ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})"
    " ON CONFLICT (request_id) DO NOTHING"
)

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder(dict[str, Any]).decode

# The batch's fault: a constraint, an integer past 64 bits, metadata that isn't JSON.
_REJECTED = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    OverflowError,
    TypeError,
    ValueError,
)

T = TypeVar("T")


class SQLiteLedgerStore:
    """A ledger in the SQLite file at `path` (created if missing). `busy_timeout` is how
    long a write waits for another process holding the file's write lock."""

    def __init__(
        self, path: str | os.PathLike[str] = "tollhouse.db", *, busy_timeout: float = 5.0
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def open(self) -> None:
        await self._run(self._connection)

    async def write_batch(self, records: Sequence[CallRecord]) -> None:
        if records:
            await self._run(self._insert, records)

    async def count(self) -> int:
        return await self._run(self._count)

    async def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        filters: Mapping[str, Any] | None = None,
        newest_first: bool = True,
    ) -> list[CallRecord]:
        sql, params = select_sql(
            _COLUMNS,
            since=since,
            until=until,
            limit=limit,
            filters=filters,
            newest_first=newest_first,
            placeholder="?",
            timestamp=_timestamp,
        )
        return await self._run(self._select, sql, params)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)

    async def _run(self, job: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("the ledger store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, job, *args)
        except _REJECTED as error:
            raise LedgerRejected(str(error)) from error
        except sqlite3.OperationalError as error:  # locked, disk full, read-only, I/O
            raise LedgerUnavailable(str(error)) from error

    # Everything below runs on the store's own thread.

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                migrate_sqlite(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _insert(self, records: Sequence[CallRecord]) -> None:
        rows = [_row(record) for record in records]
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _count(self) -> int:
        (count,) = self._connection().execute("SELECT count(*) FROM calls").fetchone()
        return int(count)

    def _select(self, sql: str, params: list[Any]) -> list[CallRecord]:
        return [_record(row) for row in self._connection().execute(sql, params)]

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _row(record: CallRecord) -> tuple[Any, ...]:
    row = list(msgspec.structs.astuple(record))
    row[_TS] = _timestamp(record.ts)
    if record.cost_usd is not None:
        row[_COST] = format(record.cost_usd, "f")
    row[_METADATA] = _json_encode(record.metadata).decode()
    return tuple(row)


def _record(row: Sequence[Any]) -> CallRecord:
    values = list(row)
    values[_TS] = datetime.fromisoformat(values[_TS])
    if values[_COST] is not None:
        values[_COST] = Decimal(values[_COST])
    values[_METADATA] = _json_decode(values[_METADATA])
    for index in _BOOLEANS:
        values[index] = bool(values[index])
    return CallRecord(**dict(zip(_FIELDS, values, strict=True)))
