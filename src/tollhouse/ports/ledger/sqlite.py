"""The ledger in a SQLite file: the embedded default, nothing to run beside the gateway.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the only
connection (WAL, see ports/sqlite_connection.py); the event loop only awaits it.

Values are stored so the file stays useful to other tools: `ts` as fixed-width UTC ISO
8601 text (it sorts in time order and SQLite's date functions read it), `cost_usd` as
plain decimal text (exact; `CAST(cost_usd AS REAL)` for a quick sum), `metadata` as JSON
text (`json_extract` works on it).

Reports sum `cost_usd` with `decimal_sum`, an aggregate this store registers on its
connection: a float sum of many fractional costs drifts (0.1 + 0.2 != 0.3), and a ledger
that disagrees with itself by a cent can't be reconciled with an invoice.
"""

from __future__ import annotations

import functools
import math
import os
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact
from typing import Any, TypeVar

import msgspec

from tollhouse.ports.ledger.base import (
    BucketWidth,
    LedgerRejected,
    LedgerUnavailable,
    UsageRow,
    aggregate_sql,
    select_sql,
    usage_rows,
)
from tollhouse.ports.ledger.call_health import HealthRow, health_rows, health_sql
from tollhouse.ports.ledger.migrations import LEDGER
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.sqlite_connection import SQLiteThread

_FIELDS = CallRecord.__struct_fields__
_COLUMNS = ", ".join(_FIELDS)
_TS = _FIELDS.index("ts")
_MONEY = [
    index
    for index, field in enumerate(msgspec.structs.fields(CallRecord))
    if field.type == Decimal | None
]
_METADATA = _FIELDS.index("metadata")
_BOOLEANS = [
    index for index, field in enumerate(msgspec.structs.fields(CallRecord)) if field.type is bool
]
# Rows per INSERT statement. One multi-row statement is one sqlite3_step, so the writer
# thread gives up and takes back the GIL once per 100 rows instead of once per row (an
# executemany steps row by row).
_ROWS_PER_INSERT = 100


@functools.lru_cache(maxsize=256)
def _insert_sql(missing: tuple[bool, ...], rows: int) -> str:
    """INSERT of `rows` rows whose columns flagged in `missing` are NULL, written as a
    literal: sqlite3 binds None (and any type but int, float, str) through its adapter
    registry, a lookup that was an eighth of the writer's time with half the columns empty."""
    row = "(" + ", ".join("NULL" if gap else "?" for gap in missing) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO calls ({_COLUMNS}) VALUES {values} ON CONFLICT (request_id) DO NOTHING"


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

# `ts` is fixed-width UTC text, so a bucket's start is a prefix of it.
_BUCKET_PREFIX: dict[BucketWidth, tuple[int, str]] = {
    "1m": (16, ":00+00:00"),
    "1h": (13, ":00:00+00:00"),
    "1d": (10, "T00:00:00+00:00"),
}
# Wide enough for any sum of costs a ledger holds; a rounded sum raises rather than lies.
_EXACT = Context(prec=200, traps=[Inexact])

T = TypeVar("T")


class SQLiteLedgerStore:
    """A ledger in the SQLite file at `path` (created if missing). `busy_timeout` is how
    long a write waits for another process holding the file's write lock."""

    def __init__(
        self, path: str | os.PathLike[str] = "tollhouse.db", *, busy_timeout: float = 5.0
    ) -> None:
        self.path = path
        self._db = SQLiteThread(
            path,
            busy_timeout,
            _prepare,
            what="ledger store",
            unavailable=LedgerUnavailable,
            rejected_errors=_REJECTED,
            rejected=LedgerRejected,
        )
        self._run = self._db.run
        self._connection = self._db.connection

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
        search: str | None = None,
        errors_only: bool = False,
        after: str | None = None,
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
            search=search,
            errors_only=errors_only,
            lower="unicode_lower",
            after=after,
        )
        return await self._run(self._select, sql, params)

    async def aggregate(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_width: BucketWidth | None = None,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Sequence[str | None]] | None = None,
    ) -> list[UsageRow]:
        if bucket_width is not None and bucket_width not in _BUCKET_PREFIX:
            raise ValueError(f"unknown bucket width {bucket_width!r}")
        sql, params = aggregate_sql(
            since=since,
            until=until,
            bucket=f"substr(ts, 1, {_BUCKET_PREFIX[bucket_width][0]})" if bucket_width else None,
            group_by=group_by,
            filters=filters,
            placeholder="?",
            timestamp=_timestamp,
            money_sum="decimal_sum({})",
        )
        rows = await self._run(self._rows, sql, params)
        suffix = _BUCKET_PREFIX[bucket_width][1] if bucket_width else ""
        return usage_rows(
            rows,
            group_by=group_by,
            bucketed=bucket_width is not None,
            bucket_start=lambda prefix: datetime.fromisoformat(prefix + suffix),
            cost=lambda total: Decimal(total) if total is not None else Decimal(0),
        )

    async def health(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_width: BucketWidth | None = None,
        filters: Mapping[str, Sequence[str | None]] | None = None,
    ) -> list[HealthRow]:
        if bucket_width is not None and bucket_width not in _BUCKET_PREFIX:
            raise ValueError(f"unknown bucket width {bucket_width!r}")
        (counts, count_params), (bins, bin_params) = health_sql(
            since=since,
            until=until,
            bucket=f"substr(ts, 1, {_BUCKET_PREFIX[bucket_width][0]})" if bucket_width else None,
            filters=filters,
            placeholder="?",
            timestamp=_timestamp,
            bin_of_column="CAST(ln({} + 1) * 10 AS INTEGER)",  # >= 0: truncation is floor
        )
        suffix = _BUCKET_PREFIX[bucket_width][1] if bucket_width else ""
        return health_rows(
            await self._run(self._rows, counts, count_params),
            await self._run(self._rows, bins, bin_params),
            bucketed=bucket_width is not None,
            bucket_start=lambda prefix: datetime.fromisoformat(prefix + suffix),
        )

    async def claim_notice(self, notice: str, at: datetime) -> bool:
        return await self._run(self._claim, notice, _timestamp(at))

    async def aclose(self) -> None:
        await self._db.aclose()

    # Everything below runs on the store's own thread.

    def _claim(self, notice: str, at: str) -> bool:
        cursor = self._connection().execute(  # autocommit: one statement, one transaction
            "INSERT INTO notices_sent (notice, sent_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (notice, at),
        )
        return cursor.rowcount == 1

    def _insert(self, records: Sequence[CallRecord]) -> None:
        # Rows with the same empty columns go in together, in their order of arrival.
        shapes: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        for record in records:
            row = _row(record)
            shapes.setdefault(tuple(value is None for value in row), []).append(row)
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for missing, rows in shapes.items():
                present = [index for index, gap in enumerate(missing) if not gap]
                for start in range(0, len(rows), _ROWS_PER_INSERT):
                    chunk = rows[start : start + _ROWS_PER_INSERT]
                    params = [row[index] for row in chunk for index in present]
                    conn.execute(_insert_sql(missing, len(chunk)), params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _count(self) -> int:
        (count,) = self._connection().execute("SELECT count(*) FROM calls").fetchone()
        return int(count)

    def _rows(self, sql: str, params: list[Any]) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()

    def _select(self, sql: str, params: list[Any]) -> list[CallRecord]:
        return [_record(row) for row in self._connection().execute(sql, params)]


class _DecimalSum:
    """SQLite aggregate: the exact sum of decimal texts, as decimal text (NULL for none)."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = _EXACT.add(self.total or Decimal(0), Decimal(value))

    def finalize(self) -> str | None:
        return None if self.total is None else format(self.total, "f")


def _prepare(conn: sqlite3.Connection) -> None:
    LEDGER.migrate_sqlite(conn)
    # typeshed types every aggregate as int -> int; this one is text -> text.
    conn.create_aggregate("decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
    conn.create_function("unicode_lower", 1, _lower, deterministic=True)
    try:
        conn.execute("SELECT ln(1)")
    except sqlite3.OperationalError:  # a SQLite built without its math functions
        conn.create_function("ln", 1, math.log, deterministic=True)


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def _row(record: CallRecord) -> tuple[Any, ...]:
    row = list(msgspec.structs.astuple(record))
    row[_TS] = _timestamp(record.ts)
    for index in _MONEY:
        if row[index] is not None:
            row[index] = format(row[index], "f")
    row[_METADATA] = _json_encode(record.metadata).decode() if record.metadata else "{}"
    for index in _BOOLEANS:  # as ints: sqlite3 binds bool through its adapter registry
        row[index] = int(row[index])
    return tuple(row)


def _record(row: Sequence[Any]) -> CallRecord:
    values = list(row)
    values[_TS] = datetime.fromisoformat(values[_TS])
    for index in _MONEY:
        if values[index] is not None:
            values[index] = Decimal(values[index])
    values[_METADATA] = _json_decode(values[_METADATA])
    for index in _BOOLEANS:
        values[index] = bool(values[index])
    return CallRecord(**dict(zip(_FIELDS, values, strict=True)))
