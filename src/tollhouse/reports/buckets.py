"""The envelope both reports answer in: the ledger aggregated per time bucket over a page
of buckets, each bucket with its results, and the page token of the next page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tollhouse.ports.ledger.base import BucketWidth, LedgerStore, UsageRow
from tollhouse.reports import params as p


async def bucketed_report(
    store: LedgerStore,
    window: p.Window,
    width: BucketWidth,
    grouped: list[str],
    filters: dict[str, list[str | None]],
    results: Callable[[UsageRow], list[dict[str, Any]]],
) -> dict[str, Any]:
    """`{data, has_more, next_page}` for `window`: one entry per bucket of the page (empty
    buckets included), holding the `results` of each aggregate row in it, grouped by the
    report dimensions `grouped`."""
    rows = await store.aggregate(
        since=window.since,
        until=window.until,
        bucket_width=width,
        group_by=[p.DIMENSIONS[name] for name in grouped],
        filters=filters,
    )
    by_bucket: dict[datetime, list[dict[str, Any]]] = {start: [] for start in window.buckets}
    for row in rows:
        if row.bucket in by_bucket:
            by_bucket[row.bucket].extend(results(row))
    return {
        "data": [
            {
                "starting_at": p.rfc3339(start),
                "ending_at": p.rfc3339(window.bucket_end(start)),
                "results": results,
            }
            for start, results in by_bucket.items()
        ],
        "has_more": window.next_page is not None,
        "next_page": window.next_page,
    }
