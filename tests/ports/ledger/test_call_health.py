"""`LedgerStore.health` (counts and latency histograms per bucket) and `query(after=...)`
(cursor pages), on SQLite and on the real PostgreSQL alike, against figures computed from
the records themselves."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.ports.ledger.conftest import T0

from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.call_health import HealthRow, Histogram, bin_of, bin_upper_edge
from tollhouse.ports.ledger.record import CallRecord

OnStore = Callable[[Callable[[LedgerStore], Awaitable[Any]]], Any]
MakeRecord = Callable[..., CallRecord]


def health_of(on_store: OnStore, records: list[CallRecord], **options: Any) -> list[HealthRow]:
    async def scenario(store: LedgerStore) -> list[HealthRow]:
        await store.write_batch(records)
        return await store.health(**options)

    result: list[HealthRow] = on_store(scenario)
    return result


def mixed(make_record: MakeRecord) -> list[CallRecord]:
    """100 calls over two hours: latencies 1..100 ms (TTFT on the streamed half), every
    tenth an error, every seventh truncated, every fifth a response-cache hit."""
    return [
        make_record(
            n,
            ts=T0 + timedelta(minutes=n * 1.2),
            latency_ms=float(n + 1),
            ttft_ms=float(n + 1) / 2 if n % 2 else None,
            stream=bool(n % 2),
            status=500 if n % 10 == 0 else 200,
            truncated=n % 7 == 0,
            cache_hit=n % 5 == 0,
            team="a" if n % 4 < 2 else "b",
        )
        for n in range(100)
    ]


def test_health_counts_every_call_of_the_period(on_store: OnStore, make_record: MakeRecord) -> None:
    records = mixed(make_record)
    (row,) = health_of(on_store, records)
    assert row.bucket is None
    assert row.calls == 100
    assert row.error_calls == sum(r.status >= 400 for r in records)
    assert row.truncated_calls == sum(r.truncated for r in records)
    assert row.cache_hit_calls == sum(r.cache_hit for r in records)
    assert row.latency_ms.total == 100
    assert row.ttft_ms.total == 50
    expected: dict[int, int] = {}
    for record in records:
        expected[bin_of(record.latency_ms)] = expected.get(bin_of(record.latency_ms), 0) + 1
    assert row.latency_ms.counts == expected


def test_percentiles_bound_the_exact_ones_within_a_bin(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = mixed(make_record)
    (row,) = health_of(on_store, records)
    latencies = sorted(r.latency_ms for r in records)
    for q in (0.5, 0.95, 0.99):
        exact = latencies[math.ceil(q * len(latencies)) - 1]
        shown = row.latency_ms.percentile(q)
        assert shown is not None
        assert exact <= shown <= (exact + 1) * math.exp(1 / 10) - 1


def test_health_per_hour_and_filtered(on_store: OnStore, make_record: MakeRecord) -> None:
    records = mixed(make_record)
    rows = health_of(on_store, records, bucket_width="1h", filters={"team": ["a"]})
    assert [row.bucket for row in rows] == [T0, T0 + timedelta(hours=1)]
    team_a = [r for r in records if r.team == "a"]
    assert sum(row.calls for row in rows) == len(team_a)
    first_hour = [r for r in team_a if r.ts < T0 + timedelta(hours=1)]
    assert rows[0].calls == len(first_hour)
    assert rows[0].error_calls == sum(r.status >= 400 for r in first_hour)


def test_health_over_nothing_is_no_row(on_store: OnStore, make_record: MakeRecord) -> None:
    assert health_of(on_store, []) == []
    records = mixed(make_record)
    assert health_of(on_store, records, since=T0 + timedelta(days=1)) == []


def test_an_unknown_bucket_width_is_refused(on_store: OnStore) -> None:
    async def scenario(store: LedgerStore) -> None:
        with pytest.raises(ValueError, match="bucket width"):
            await store.health(bucket_width="1w")  # type: ignore[arg-type]

    on_store(scenario)


@pytest.mark.parametrize("newest_first", [True, False])
def test_cursor_pages_walk_every_record_once_in_order(
    on_store: OnStore, make_record: MakeRecord, newest_first: bool
) -> None:
    # Same-instant records too: the cursor must not skip or repeat ties.
    records = [make_record(n, ts=T0 + timedelta(seconds=n // 3)) for n in range(23)]

    async def scenario(store: LedgerStore) -> list[list[str]]:
        await store.write_batch(records)
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = await store.query(limit=5, after=cursor, newest_first=newest_first)
            if not page:
                return pages
            pages.append([record.request_id for record in page])
            cursor = page[-1].request_id

    pages = on_store(scenario)
    walked = [request_id for page in pages for request_id in page]
    expected = [record.request_id for record in records]
    assert walked == (expected[::-1] if newest_first else expected)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]


def test_a_cursor_with_filters_and_an_unknown_cursor(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n, truncated=n % 2 == 0) for n in range(10)]

    async def scenario(store: LedgerStore) -> tuple[list[str], list[str]]:
        await store.write_batch(records)
        after = await store.query(limit=3, filters={"truncated": True}, after="req_000006")
        unknown = await store.query(limit=3, after="no-such-request")
        return [r.request_id for r in after], [r.request_id for r in unknown]

    after, unknown = on_store(scenario)
    assert after == ["req_000004", "req_000002", "req_000000"]
    assert unknown == []


def test_histograms_merge_and_an_empty_one_has_no_percentile() -> None:
    assert Histogram().percentile(0.5) is None
    merged = Histogram({1: 2}).merged(Histogram({1: 1, 3: 1}))
    assert merged.counts == {1: 3, 3: 1}
    assert merged.percentile(1.0) == bin_upper_edge(3)
