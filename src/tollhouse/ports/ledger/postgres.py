"""The ledger on PostgreSQL: the scale-out store, shared by every gateway process.

One connection, opened (and migrated) on first use and opened again after any failure:
the only writer is one batch task per process, so a pool would buy nothing. An
`asyncio.Lock` keeps a read from the admin API out of the middle of a write.

A batch goes in by binary `COPY` into a per-connection staging table, then one
`INSERT ... SELECT ... ON CONFLICT (request_id) DO NOTHING` (COPY alone can't skip
duplicates). It is about twice as fast as `executemany` (which psycopg already pipelines)
and was never slower in any run (bench/results/decisions.md).

PostgreSQL text can't hold NUL, and a client controls some of these strings (`end_user`
comes from the request), so NUL becomes U+FFFD here rather than turning one bad request
into a batch the database refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads

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
from tollhouse.ports.postgres_connection import PostgresConnection

_FIELDS = CallRecord.__struct_fields__
_COLUMNS = ", ".join(_FIELDS)
_TS = _FIELDS.index("ts")
_STAGING = (
    "CREATE TEMP TABLE calls_staging ON COMMIT DELETE ROWS"
    f" AS SELECT {_COLUMNS} FROM calls WITH NO DATA"
)
_COPY = f"COPY calls_staging ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_MERGE = (
    f"INSERT INTO calls ({_COLUMNS}) SELECT {_COLUMNS} FROM calls_staging"
    " ON CONFLICT (request_id) DO NOTHING"
)

# date_trunc with an explicit zone: buckets are UTC days whatever the session's zone.
_BUCKET: dict[BucketWidth, str] = {
    "1m": "date_trunc('minute', ts, 'UTC')",
    "1h": "date_trunc('hour', ts, 'UTC')",
    "1d": "date_trunc('day', ts, 'UTC')",
}

_json_encode = msgspec.json.Encoder().encode


class PostgresLedgerStore:
    """`conninfo` is a libpq connection string or URI. Every operation gives up after
    `operation_timeout` seconds (a half-open TCP connection would otherwise stall the
    writer forever) and the connection is dropped, to be opened afresh next time."""

    def __init__(
        self, conninfo: str, *, connect_timeout: float = 5.0, operation_timeout: float = 30.0
    ) -> None:
        self.conninfo = conninfo
        self.operation_timeout = operation_timeout
        self._db = PostgresConnection(
            conninfo, connect_timeout=connect_timeout, prepare=self._prepare, what="ledger store"
        )
        self._copy_types: list[int] = []

    async def open(self) -> None:
        async with self._operation():
            pass

    async def write_batch(self, records: Sequence[CallRecord]) -> None:
        if not records:
            return
        async with self._operation() as conn, conn.transaction(), conn.cursor() as cursor:
            async with cursor.copy(_COPY) as copy:
                copy.set_types(self._copy_types)
                for record in records:
                    await copy.write_row(_row(record))
            await cursor.execute(_MERGE)

    async def count(self) -> int:
        async with self._operation() as conn:
            cursor = await conn.execute("SELECT count(*) FROM calls")
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

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
            placeholder="%s",
            timestamp=_as_is,
            search=search,
            errors_only=errors_only,
            after=after,
        )
        return [_record(row) for row in await self._fetch(sql, params)]

    async def aggregate(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_width: BucketWidth | None = None,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Sequence[str | None]] | None = None,
    ) -> list[UsageRow]:
        if bucket_width is not None and bucket_width not in _BUCKET:
            raise ValueError(f"unknown bucket width {bucket_width!r}")
        sql, params = aggregate_sql(
            since=since,
            until=until,
            bucket=_BUCKET[bucket_width] if bucket_width else None,
            group_by=group_by,
            filters=filters,
            placeholder="%s",
            timestamp=_as_is,
            money_sum="sum({})",  # numeric: exact
        )
        return usage_rows(
            await self._fetch(sql, params),
            group_by=group_by,
            bucketed=bucket_width is not None,
            bucket_start=lambda start: start.astimezone(UTC),
            cost=lambda total: total if total is not None else Decimal(0),
        )

    async def health(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_width: BucketWidth | None = None,
        filters: Mapping[str, Sequence[str | None]] | None = None,
    ) -> list[HealthRow]:
        if bucket_width is not None and bucket_width not in _BUCKET:
            raise ValueError(f"unknown bucket width {bucket_width!r}")
        (counts, count_params), (bins, bin_params) = health_sql(
            since=since,
            until=until,
            bucket=_BUCKET[bucket_width] if bucket_width else None,
            filters=filters,
            placeholder="%s",
            timestamp=_as_is,
            bin_of_column="floor(ln({} + 1) * 10)::int",
        )
        return health_rows(
            await self._fetch(counts, count_params),
            await self._fetch(bins, bin_params),
            bucketed=bucket_width is not None,
            bucket_start=lambda start: start.astimezone(UTC),
        )

    async def claim_notice(self, notice: str, at: datetime) -> bool:
        async with self._operation() as conn:
            cursor = await conn.execute(
                "INSERT INTO notices_sent (notice, sent_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [notice, at],
            )
            return cursor.rowcount == 1

    async def _fetch(self, sql: str, params: list[Any]) -> list[Any]:
        async with self._operation() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def aclose(self) -> None:
        await self._db.aclose()

    @asynccontextmanager
    async def _operation(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """One operation, bounded in time, with driver errors turned into the port's: the
        batch's fault (`LedgerRejected`) or the database's (`LedgerUnavailable`). Any error
        but the batch's drops the connection, which may be left mid-protocol."""
        async with self._db.lock:
            try:
                async with asyncio.timeout(self.operation_timeout):
                    yield await self._db.get()
            except (psycopg.DataError, psycopg.IntegrityError) as error:
                raise LedgerRejected(str(error)) from error
            except (OverflowError, TypeError, ValueError) as error:
                # Raised while encoding a row (an integer past its column, metadata that
                # isn't JSON): the batch's fault, but the COPY was cut mid-stream.
                await self._db.drop()
                raise LedgerRejected(str(error)) from error
            except TimeoutError as error:
                await self._db.drop()
                message = f"no answer from PostgreSQL in {self.operation_timeout}s"
                raise LedgerUnavailable(message) from error
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as error:
                await self._db.drop()
                raise LedgerUnavailable(str(error)) from error
            except BaseException:
                await self._db.drop()
                raise

    async def _prepare(self, conn: psycopg.AsyncConnection[Any]) -> None:
        set_json_dumps(_dump_json, context=conn)
        set_json_loads(msgspec.json.decode, context=conn)
        await LEDGER.migrate_postgres(conn)
        cursor = await conn.execute(f"SELECT {_COLUMNS} FROM calls LIMIT 0")
        self._copy_types = [column.type_code for column in cursor.description or []]
        await conn.execute(_STAGING)


def _as_is(moment: datetime) -> datetime:
    return moment


def _row(record: CallRecord) -> list[Any]:
    row = list(msgspec.structs.astuple(record))
    for index, value in enumerate(row):
        if type(value) is str and "\x00" in value:
            row[index] = value.replace("\x00", "\ufffd")
    return row


def _dump_json(value: Any) -> bytes:
    data = _json_encode(value)
    if b"\\u0000" in data:  # jsonb refuses NUL even escaped; clean only when it's there
        data = _json_encode(_without_nul(value))
    return data


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


def _record(row: Sequence[Any]) -> CallRecord:
    values = list(row)
    values[_TS] = values[_TS].astimezone(UTC)
    return CallRecord(**dict(zip(_FIELDS, values, strict=True)))
