"""Call health over a period, aggregated by the database: per UTC time bucket, how many
calls there were, how many failed (status >= 400), were truncated or were answered from
the response cache, and how their latency and time to first token were distributed. What
the dashboard's overview charts, read without ever fetching the calls themselves.

Latencies are counted in logarithmic bins: bin k holds the calls with
`e^(k/10) - 1 <= ms < e^((k+1)/10) - 1`, each bin about 10.5 % wide, so a percentile read
from the bins (`Histogram.percentile`, the upper edge of the bin it falls in) is at most
one bin above the exact one, and a million calls come back as a few hundred rows at most
(a call of ten minutes is in bin 133).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tollhouse.ports.ledger.base import where_clause

BINS_PER_E = 10


def bin_of(ms: float) -> int:
    """The bin a latency of `ms` milliseconds falls in (what the SQL computes)."""
    return math.floor(math.log(ms + 1) * BINS_PER_E)


def bin_upper_edge(index: int) -> float:
    """The first latency (ms) past bin `index`."""
    return math.exp((index + 1) / BINS_PER_E) - 1


@dataclass(frozen=True, slots=True)
class Histogram:
    """Calls per latency bin (`bin_of`)."""

    counts: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The upper edge (ms) of the bin holding the `q`-quantile (0 < q <= 1) call, by the
        nearest-rank rule; None without calls."""
        total = self.total
        if not total:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bin_upper_edge(index)
        return bin_upper_edge(max(self.counts))  # unreachable: seen ends at total

    def merged(self, other: Histogram) -> Histogram:
        counts = dict(self.counts)
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count
        return Histogram(counts)


@dataclass(frozen=True, slots=True)
class HealthRow:
    bucket: datetime | None  # start of the UTC bucket; None when not bucketed
    calls: int
    error_calls: int
    truncated_calls: int
    cache_hit_calls: int
    latency_ms: Histogram
    ttft_ms: Histogram  # over the calls that sent a first token


def health_sql(
    *,
    since: datetime | None,
    until: datetime | None,
    bucket: str | None,
    filters: Mapping[str, Sequence[str | None]] | None,
    placeholder: str,
    timestamp: Callable[[datetime], Any],
    bin_of_column: str,
) -> list[tuple[str, list[Any]]]:
    """The two statements of `LedgerStore.health` (counts, then bins), shared by both
    stores. `bucket` is the dialect's SQL expression of the bucket start (None: not
    bucketed) and `bin_of_column` its expression of `bin_of`, `{}` standing for the
    column. Columns selected: the bucket (when bucketed), then the counts; and the
    bucket, `l` (latency) or `t` (TTFT), the bin, and its calls."""
    where, params = where_clause(
        since=since,
        until=until,
        filters=None,
        placeholder=placeholder,
        timestamp=timestamp,
        allowed=filters,
    )
    head = [bucket] if bucket else []
    group = " GROUP BY 1" if bucket else ""
    counts = ", ".join(
        [
            *head,
            "count(*)",
            "sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END)",
            "sum(CASE WHEN truncated THEN 1 ELSE 0 END)",
            "sum(CASE WHEN cache_hit THEN 1 ELSE 0 END)",
        ]
    )
    bins = []
    for kind, column in (("l", "latency_ms"), ("t", "ttft_ms")):
        columns = ", ".join([*head, f"'{kind}'", bin_of_column.format(column), "count(*)"])
        present = f"{where} AND {column} IS NOT NULL" if where else f" WHERE {column} IS NOT NULL"
        keys = ", ".join(str(n) for n in range(1, len(head) + 3))
        bins.append(f"SELECT {columns} FROM calls{present} GROUP BY {keys}")
    return [
        (f"SELECT {counts} FROM calls{where}{group}", params),
        (" UNION ALL ".join(bins), [*params, *params]),
    ]


def health_rows(
    counts: Sequence[Sequence[Any]],
    bins: Sequence[Sequence[Any]],
    *,
    bucketed: bool,
    bucket_start: Callable[[Any], datetime],
) -> list[HealthRow]:
    """The two statements' results as `HealthRow`s in bucket order."""
    histograms: dict[Any, tuple[dict[int, int], dict[int, int]]] = {}
    for row in bins:
        values = list(row)
        key = values.pop(0) if bucketed else None
        kind, index, calls = values
        latency, ttft = histograms.setdefault(key, ({}, {}))
        (latency if kind == "l" else ttft)[int(index)] = int(calls)
    result = []
    for row in counts:
        values = list(row)
        key = values.pop(0) if bucketed else None
        calls, errors, truncated, hits = values
        if not calls:  # an unbucketed count over no rows still yields one row
            continue
        latency, ttft = histograms.get(key, ({}, {}))
        result.append(
            HealthRow(
                bucket=bucket_start(key) if bucketed else None,
                calls=int(calls),
                error_calls=int(errors or 0),
                truncated_calls=int(truncated or 0),
                cache_hit_calls=int(hits or 0),
                latency_ms=Histogram(latency),
                ttft_ms=Histogram(ttft),
            )
        )
    result.sort(key=lambda row: row.bucket or datetime.min)
    return result
