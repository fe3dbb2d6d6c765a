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
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tollhouse.ports.ledger.record import CallRecord

if TYPE_CHECKING:
    from tollhouse.ports.ledger.call_health import HealthRow

FILTERABLE: frozenset[str] = frozenset(
    {
        "request_id",
        "route",
        "model_served",
        "key_id",
        "end_user",
        "team",
        "project",
        "status",
        "error_type",
        "variant",
        "truncated",
    }
)
"""Columns `LedgerStore.query` filters on by equality (None matches NULL)."""

SEARCHABLE: tuple[str, ...] = (
    "request_id",
    "model_requested",
    "model_served",
    "end_user",
    "error_type",
    "prompt_text",
    "answer_text",
)
"""Columns `LedgerStore.query(search=...)` looks into."""

GROUPABLE: tuple[str, ...] = (
    "model_served",
    "model_requested",
    "key_id",
    "end_user",
    "team",
    "project",
    "provider",
    "route",
    "variant",
    "service_tier",
    "inference_geo",
    "speed",
    "context_window",
    "config_version",
    "system_prompt_hash",
)
"""Columns `LedgerStore.aggregate` groups and filters on; their values are text (or None),
`config_version` included (its integer column is read as text)."""

# Groupable columns whose stored type is not text, read as text so that a group's value
# and a filter's value are the same kind on SQLite and PostgreSQL alike.
_AS_TEXT: dict[str, str] = {"config_version": "CAST(config_version AS TEXT)"}

COST_LINES: tuple[str, ...] = (
    "input",
    "output",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "audio",
    "web_search",
    "web_fetch",
    "other_tool",
)
"""The cost lines a record keeps (`<line>_cost_usd`), summed by `aggregate` per line."""

BucketWidth = Literal["1m", "1h", "1d"]
BUCKET_WIDTHS: tuple[BucketWidth, ...] = ("1m", "1h", "1d")


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The sums over the calls of one time bucket and one combination of group values.

    `cost_usd` sums only the calls whose price is known, exactly, and not billed against a
    commitment; `unpriced_calls` says how many calls it leaves out for an unknown price, so
    an unknown price never reads as a free call."""

    bucket: datetime | None  # start of the UTC bucket; None when not bucketed
    group: dict[str, str | None]  # GROUPABLE column -> value, for the grouped columns only
    calls: int
    error_calls: int  # status >= 400
    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    cost_usd: Decimal
    unpriced_calls: int
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    # Per cost line (`COST_LINES`), over the priced calls `cost_usd` sums; a call recorded
    # before the ledger kept lines adds to `cost_usd` only, so lines may sum to less.
    cost_lines: dict[str, Decimal] = field(default_factory=dict)
    # Calls billed against a commitment (Anthropic Priority Tier): their count and their
    # standard-rate price, which `cost_usd` leaves out as the provider's cost report does.
    commitment_calls: int = 0
    commitment_cost_usd: Decimal = Decimal(0)


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
        search: str | None = None,
        errors_only: bool = False,
        after: str | None = None,
    ) -> list[CallRecord]:
        """Records with `since <= ts < until`, matching every `filters` item (keys from
        `FILTERABLE`, else ValueError), ordered by `ts` (then insertion order). `search`
        keeps records where one of `SEARCHABLE` contains it, ignoring case; `errors_only`
        keeps records with status >= 400. `after` is a cursor: the request id of the last
        record of the previous page, the page holding the records that come after it in
        this order (none when no record has that id)."""
        ...

    async def health(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_width: BucketWidth | None = None,
        filters: Mapping[str, Sequence[str | None]] | None = None,
    ) -> list[HealthRow]:
        """Calls, errors, truncations, response-cache hits and the latency and TTFT
        histograms per UTC time bucket (None: one row over the whole period), over the
        calls `aggregate` would count with the same arguments; done by the database, rows
        in bucket order, no row for an empty bucket (ports/ledger/call_health.py)."""
        ...

    async def aggregate(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_width: BucketWidth | None = None,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Sequence[str | None]] | None = None,
    ) -> list[UsageRow]:
        """Sums per UTC time bucket (`bucket_width`; None: one row per group over the whole
        period) and per combination of `group_by` columns, over calls with
        `since <= ts < until` whose every `filters` column holds one of the listed values
        (None matches NULL). Columns come from `GROUPABLE`, else ValueError. Done by the
        database; rows ordered by bucket then group values (NULL last); no row for an
        empty bucket."""
        ...

    async def claim_notice(self, notice: str, at: datetime) -> bool:
        """Record that the notice named `notice` is sent at `at`; True for the one caller
        that recorded it, False when it was recorded before (by this gateway, before a
        restart, or by another one on the same database)."""
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
    search: str | None = None,
    errors_only: bool = False,
    lower: str = "lower",
    allowed: Mapping[str, Sequence[str | None]] | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (empty or with a leading space) and its parameters for `query`
    and `aggregate`, shared so both stores read the same filters the same way. Column
    names come only from `FILTERABLE`, `SEARCHABLE` and `GROUPABLE`, never from the
    caller, so nothing the caller passes reaches the SQL text. `lower` names the SQL
    function that lower-cases text for `search` (SQLite's own is ASCII only)."""
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
    for column, values in (allowed or {}).items():
        clauses.append(_one_of(_groupable(column), values, placeholder, params))
    if errors_only:
        clauses.append("status >= 400")
    if search:
        pattern = "%" + search.lower().translate(_LIKE_ESCAPES) + "%"
        matches = [f"{lower}({column}) LIKE {placeholder} ESCAPE '\\'" for column in SEARCHABLE]
        clauses.append("(" + " OR ".join(matches) + ")")
        params.extend([pattern] * len(SEARCHABLE))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def _groupable(column: str) -> str:
    """The SQL expression of a `GROUPABLE` column, as text."""
    if column not in GROUPABLE:
        raise ValueError(f"can't group or filter on {column!r}; columns: {list(GROUPABLE)}")
    return _AS_TEXT.get(column, column)


def _one_of(column: str, values: Sequence[str | None], placeholder: str, params: list[Any]) -> str:
    known = [value for value in values if value is not None]
    tests = []
    if known:
        tests.append(f"{column} IN ({', '.join([placeholder] * len(known))})")
        params.extend(known)
    if len(known) < len(values):
        tests.append(f"{column} IS NULL")
    return "(" + " OR ".join(tests) + ")" if tests else "1 = 0"


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
    search: str | None = None,
    errors_only: bool = False,
    lower: str = "lower",
    after: str | None = None,
) -> tuple[str, list[Any]]:
    """The `query` statement of both stores; they differ only in placeholder, timestamp
    encoding and lower-casing function."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    where, params = where_clause(
        since=since,
        until=until,
        filters=filters,
        placeholder=placeholder,
        timestamp=timestamp,
        search=search,
        errors_only=errors_only,
        lower=lower,
    )
    order = "DESC" if newest_first else "ASC"
    if after is not None:
        # A row-value comparison with the cursor's record, plus a plain bound on `ts` that
        # lets the time index start the scan there.
        beyond = "<" if newest_first else ">"
        cursor = f"(SELECT ts, id FROM calls WHERE request_id = {placeholder})"
        first_ts = f"(SELECT ts FROM calls WHERE request_id = {placeholder})"
        where += " AND " if where else " WHERE "
        where += f"ts {beyond}= {first_ts} AND (ts, id) {beyond} {cursor}"
        params.extend([after, after])
    sql = f"SELECT {columns} FROM calls{where} ORDER BY ts {order}, id {order} LIMIT {placeholder}"
    return sql, [*params, limit]


def aggregate_sql(
    *,
    since: datetime | None,
    until: datetime | None,
    bucket: str | None,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[str | None]] | None,
    placeholder: str,
    timestamp: Callable[[datetime], Any],
    money_sum: str,
) -> tuple[str, list[Any]]:
    """The `aggregate` statement of both stores. `bucket` is the dialect's SQL expression
    of the bucket start (None: no time buckets) and `money_sum` its exact sum of a money
    expression, `{}` standing for it. The columns selected are: bucket (when bucketed), the
    `group_by` columns in order, then the sums in `UsageRow`'s order, starting at calls."""
    columns = [_groupable(column) for column in group_by]
    if len(set(columns)) < len(columns):
        raise ValueError(f"group_by lists a column twice: {list(group_by)}")
    keys = ([bucket] if bucket else []) + columns
    where, params = where_clause(
        since=since,
        until=until,
        filters=None,
        placeholder=placeholder,
        timestamp=timestamp,
        allowed=filters,
    )
    sums = [
        "count(*)",
        "sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END)",
        "sum(input_tokens)",
        "sum(output_tokens)",
        "sum(cache_write_5m_tokens)",
        "sum(cache_write_1h_tokens)",
        "sum(cache_read_tokens)",
        money_sum.format("CASE WHEN commitment_billed THEN NULL ELSE cost_usd END"),
        "count(*) - count(cost_usd)",
        "sum(web_search_requests)",
        "sum(web_fetch_requests)",
        "sum(audio_input_tokens)",
        "sum(audio_output_tokens)",
        *(
            money_sum.format(f"CASE WHEN {_ITEMIZED} THEN {line}_cost_usd END")
            for line in COST_LINES
        ),
        "sum(CASE WHEN commitment_billed THEN 1 ELSE 0 END)",
        money_sum.format("CASE WHEN commitment_billed THEN cost_usd END"),
    ]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return f"SELECT {', '.join(keys + sums)} FROM calls{where}{group}", params


# The calls whose lines the cost report itemizes: priced, and billed per token.
_ITEMIZED = "cost_usd IS NOT NULL AND NOT commitment_billed"


def usage_rows(
    rows: Sequence[Sequence[Any]],
    *,
    group_by: Sequence[str],
    bucketed: bool,
    bucket_start: Callable[[Any], datetime],
    cost: Callable[[Any], Decimal],
) -> list[UsageRow]:
    """`aggregate_sql`'s result rows as `UsageRow`s in the documented order; the stores
    differ only in how they decode the bucket start and the cost sum."""
    result = []
    for row in rows:
        values = list(row)
        bucket = bucket_start(values.pop(0)) if bucketed else None
        group = {column: values.pop(0) for column in group_by}
        calls, errors, inputs, outputs, write_5m, write_1h, reads, cost_sum, unpriced = values[:9]
        searches, fetches, audio_in, audio_out = values[9:13]
        lines = values[13 : 13 + len(COST_LINES)]
        commitment_calls, commitment_cost = values[13 + len(COST_LINES) :]
        if not calls:  # an ungrouped aggregate over no rows still yields one row
            continue
        result.append(
            UsageRow(
                bucket=bucket,
                group=group,
                calls=int(calls),
                error_calls=int(errors),
                input_tokens=int(inputs),
                output_tokens=int(outputs),
                cache_write_5m_tokens=int(write_5m),
                cache_write_1h_tokens=int(write_1h),
                cache_read_tokens=int(reads),
                cost_usd=cost(cost_sum),
                unpriced_calls=int(unpriced),
                web_search_requests=int(searches),
                web_fetch_requests=int(fetches),
                audio_input_tokens=int(audio_in),
                audio_output_tokens=int(audio_out),
                cost_lines={
                    line: cost(total) for line, total in zip(COST_LINES, lines, strict=True)
                },
                commitment_calls=int(commitment_calls),
                commitment_cost_usd=cost(commitment_cost),
            )
        )
    result.sort(key=_row_order)
    return result


def _row_order(row: UsageRow) -> tuple[Any, ...]:
    values = [(value is None, value or "") for value in row.group.values()]
    return (row.bucket or datetime.min, *values)
