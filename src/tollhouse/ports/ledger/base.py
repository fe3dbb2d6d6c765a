"""The interface of a ledger store: where call records end up, and how they are read back.

A store is written by one `LedgerWriter` (batches, off the request path) and read by the
admin API and CLI. Writes are idempotent on `request_id`, so a batch replayed from the
spill file after a failure that happened *after* the commit never counts a call twice.

A store tells the writer what a failure means by the exception it raises:
`LedgerRejected` when the batch itself is at fault (retrying it can't help, so the writer
isolates the bad records); anything else, `LedgerUnavailable` included, when the store
can't be reached (the writer spills the batch and tries again later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from tollhouse.ports.ledger.record import CallRecord

FILTERABLE: frozenset[str] = frozenset(
    {"model_served", "key_id", "end_user", "team", "project", "status", "error_type"}
)
"""Columns `LedgerStore.query` filters on by equality (None matches NULL)."""


class LedgerUnavailable(Exception):
    """The store can't be reached now; the same batch may well succeed later."""


class LedgerRejected(Exception):
    """The store refused what the batch holds; writing it again would fail again."""


class LedgerStore(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema to the latest migration. Writes and reads open the
        store themselves when needed, so calling this is how a caller learns *now* that the
        store is unreachable rather than at the first write."""
        ...

    async def write_batch(self, records: Sequence[CallRecord]) -> None:
        """Insert `records` in one transaction; a `request_id` already stored is skipped."""
        ...

    async def count(self) -> int:
        """How many calls the ledger holds. Exact, so it may scan the table: for tests,
        checks and small ledgers, not for a dashboard refreshed every second."""
        ...

    async def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        filters: Mapping[str, Any] | None = None,
        newest_first: bool = True,
    ) -> list[CallRecord]:
        """Records with `since <= ts < until`, matching every `filters` item (keys from
        `FILTERABLE`, else ValueError), ordered by `ts` (then insertion order)."""
        ...

    async def aclose(self) -> None:
        """Close the connection; the store can't be used afterwards."""
        ...


def where_clause(
    *,
    since: datetime | None,
    until: datetime | None,
    filters: Mapping[str, Any] | None,
    placeholder: str,
    timestamp: Callable[[datetime], Any],
) -> tuple[str, list[Any]]:
    """The WHERE clause (empty or with a leading space) and its parameters for `query`,
    shared so both stores read the same filters the same way. Column names come only from
    `FILTERABLE`, never from the caller, so nothing the caller passes reaches the SQL text."""
    clauses: list[str] = []
    params: list[Any] = []
    for bound, operator in ((since, ">="), (until, "<")):
        if bound is None:
            continue
        if bound.utcoffset() is None:
            raise ValueError("query bounds must be timezone-aware datetimes")
        clauses.append(f"ts {operator} {placeholder}")
        params.append(timestamp(bound))
    for column, value in (filters or {}).items():
        if column not in FILTERABLE:
            raise ValueError(f"can't filter on {column!r}; filterable: {sorted(FILTERABLE)}")
        if value is None:
            clauses.append(f"{column} IS NULL")
        else:
            clauses.append(f"{column} = {placeholder}")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def select_sql(
    columns: str,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    filters: Mapping[str, Any] | None,
    newest_first: bool,
    placeholder: str,
    timestamp: Callable[[datetime], Any],
) -> tuple[str, list[Any]]:
    """The `query` statement of both stores; they differ only in placeholder and timestamp."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    where, params = where_clause(
        since=since, until=until, filters=filters, placeholder=placeholder, timestamp=timestamp
    )
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT {columns} FROM calls{where} ORDER BY ts {order}, id {order} LIMIT {placeholder}"
    return sql, [*params, limit]
