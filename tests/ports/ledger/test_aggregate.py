"""`LedgerStore.aggregate` and `query(search=..., errors_only=...)`, on SQLite and on the
real PostgreSQL alike, against figures computed by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tollhouse.ports.ledger.base import COST_LINES, LedgerStore, UsageRow
from tollhouse.ports.ledger.record import CallRecord

OnStore = Callable[[Callable[[LedgerStore], Awaitable[Any]]], Any]
MakeRecord = Callable[..., CallRecord]

DAY = datetime(2026, 11, 25, tzinfo=UTC)


def aggregate_of(on_store: OnStore, records: list[CallRecord], **options: Any) -> list[UsageRow]:
    async def scenario(store: LedgerStore) -> list[UsageRow]:
        await store.write_batch(records)
        return await store.aggregate(**options)

    result: list[UsageRow] = on_store(scenario)
    return result


def test_totals_sum_every_counter_over_the_period(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(
            1,
            input_tokens=100,
            output_tokens=10,
            cache_write_5m_tokens=5,
            cache_write_1h_tokens=7,
            cache_read_tokens=50,
            cost_usd=Decimal("0.5"),
        ),
        make_record(
            2,
            input_tokens=200,
            output_tokens=20,
            cache_write_5m_tokens=1,
            cache_write_1h_tokens=2,
            cache_read_tokens=3,
            cost_usd=Decimal("0.25"),
            status=529,
        ),
    ]
    (row,) = aggregate_of(on_store, records)
    assert row == UsageRow(
        bucket=None,
        group={},
        calls=2,
        error_calls=1,
        input_tokens=300,
        output_tokens=30,
        cache_write_5m_tokens=6,
        cache_write_1h_tokens=9,
        cache_read_tokens=53,
        cost_usd=Decimal("0.75"),
        unpriced_calls=0,
        cost_lines=dict.fromkeys(COST_LINES, Decimal(0)),
    )


def test_an_empty_period_gives_no_rows(on_store: OnStore, make_record: MakeRecord) -> None:
    rows = aggregate_of(on_store, [make_record(1)], since=DAY + timedelta(days=3))
    assert rows == []


def test_cost_sum_is_exact_where_floats_drift(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, cost_usd=Decimal("0.1")),
        make_record(2, cost_usd=Decimal("0.2")),
    ]
    (row,) = aggregate_of(on_store, records)
    assert row.cost_usd == Decimal("0.3")
    assert str(row.cost_usd) == "0.3"


def test_many_small_fractional_costs_sum_to_the_exact_total(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n, cost_usd=Decimal("0.0000001234567891")) for n in range(1000)]
    (row,) = aggregate_of(on_store, records)
    assert row.cost_usd == Decimal("0.0001234567891000")


def test_unknown_costs_are_counted_not_summed_as_zero(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, cost_usd=None),
        make_record(2, cost_usd=Decimal("0.003")),
        make_record(3, cost_usd=None),
    ]
    (row,) = aggregate_of(on_store, records)
    assert (row.calls, row.cost_usd, row.unpriced_calls) == (3, Decimal("0.003"), 2)


def test_a_group_with_only_unknown_costs_sums_to_zero_with_all_calls_unpriced(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    (row,) = aggregate_of(on_store, [make_record(1, cost_usd=None)])
    assert (row.cost_usd, row.unpriced_calls) == (Decimal(0), 1)


def test_daily_buckets_start_at_utc_midnight(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, ts=DAY + timedelta(hours=1)),
        make_record(2, ts=DAY + timedelta(hours=23, minutes=59, seconds=59)),
        make_record(3, ts=DAY + timedelta(days=1)),
    ]
    rows = aggregate_of(on_store, records, bucket_width="1d")
    assert [(row.bucket, row.calls) for row in rows] == [(DAY, 2), (DAY + timedelta(days=1), 1)]
    assert all(row.bucket is not None and row.bucket.utcoffset() == timedelta(0) for row in rows)


def test_hourly_buckets_align_to_the_hour(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, ts=DAY + timedelta(hours=5, minutes=1)),
        make_record(2, ts=DAY + timedelta(hours=5, minutes=59)),
        make_record(3, ts=DAY + timedelta(hours=6)),
    ]
    rows = aggregate_of(on_store, records, bucket_width="1h")
    assert [(row.bucket, row.calls) for row in rows] == [
        (DAY + timedelta(hours=5), 2),
        (DAY + timedelta(hours=6), 1),
    ]


def test_minute_buckets_align_to_the_minute(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, ts=DAY + timedelta(minutes=7, seconds=1)),
        make_record(2, ts=DAY + timedelta(minutes=7, seconds=59, microseconds=999999)),
        make_record(3, ts=DAY + timedelta(minutes=8)),
    ]
    rows = aggregate_of(on_store, records, bucket_width="1m")
    assert [(row.bucket, row.calls) for row in rows] == [
        (DAY + timedelta(minutes=7), 2),
        (DAY + timedelta(minutes=8), 1),
    ]


def test_a_record_written_in_another_zone_lands_in_its_utc_day(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    ts = datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("America/New_York"))  # 04:30 UTC
    (row,) = aggregate_of(on_store, [make_record(1, ts=ts)], bucket_width="1d")
    assert row.bucket == DAY


def test_grouping_splits_rows_by_each_combination(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, model_served="m-a", key_id="k1", cost_usd=Decimal("0.1")),
        make_record(2, model_served="m-a", key_id="k1", cost_usd=Decimal("0.2")),
        make_record(3, model_served="m-a", key_id="k2", cost_usd=Decimal("0.4")),
        make_record(4, model_served="m-b", key_id="k1", cost_usd=Decimal("0.8")),
    ]
    rows = aggregate_of(on_store, records, group_by=["model_served", "key_id"])
    assert [(row.group, row.calls, row.cost_usd) for row in rows] == [
        ({"model_served": "m-a", "key_id": "k1"}, 2, Decimal("0.3")),
        ({"model_served": "m-a", "key_id": "k2"}, 1, Decimal("0.4")),
        ({"model_served": "m-b", "key_id": "k1"}, 1, Decimal("0.8")),
    ]


def test_a_null_group_value_is_its_own_group_sorted_last(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1, team=None), make_record(2, team="search"), make_record(3, team=None)]
    rows = aggregate_of(on_store, records, group_by=["team"])
    assert [(row.group, row.calls) for row in rows] == [
        ({"team": "search"}, 1),
        ({"team": None}, 2),
    ]


def test_buckets_and_groups_combine(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, ts=DAY, project="p1"),
        make_record(2, ts=DAY, project="p2"),
        make_record(3, ts=DAY + timedelta(days=1), project="p1"),
    ]
    rows = aggregate_of(on_store, records, bucket_width="1d", group_by=["project"])
    assert [(row.bucket, row.group["project"], row.calls) for row in rows] == [
        (DAY, "p1", 1),
        (DAY, "p2", 1),
        (DAY + timedelta(days=1), "p1", 1),
    ]


def test_filters_keep_only_the_listed_values(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, end_user="ann"),
        make_record(2, end_user="bob"),
        make_record(3, end_user="cid"),
        make_record(4, end_user=None),
    ]
    (row,) = aggregate_of(on_store, records, filters={"end_user": ["ann", "cid"]})
    assert row.calls == 2


def test_a_none_in_a_filter_matches_the_null_value(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1, end_user="ann"), make_record(2, end_user=None)]
    (row,) = aggregate_of(on_store, records, filters={"end_user": [None]})
    assert row.calls == 1


def test_filters_on_several_columns_must_all_hold(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, provider="anthropic", model_requested="a"),
        make_record(2, provider="openai", model_requested="a"),
        make_record(3, provider="anthropic", model_requested="b"),
    ]
    (row,) = aggregate_of(
        on_store, records, filters={"provider": ["anthropic"], "model_requested": ["a"]}
    )
    assert row.calls == 1


def test_the_period_includes_since_and_excludes_until(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n, ts=DAY + timedelta(hours=n)) for n in range(4)]
    (row,) = aggregate_of(
        on_store, records, since=DAY + timedelta(hours=1), until=DAY + timedelta(hours=3)
    )
    assert row.calls == 2


@pytest.mark.parametrize(
    "options",
    [
        {"group_by": ["status"]},
        {"group_by": ["model_served; DROP TABLE calls"]},
        {"filters": {"prompt_text": ["x"]}},
        {"group_by": ["team", "team"]},
        {"bucket_width": "1w"},
    ],
)
def test_columns_outside_the_whitelist_are_refused(
    on_store: OnStore, options: dict[str, Any]
) -> None:
    async def scenario(store: LedgerStore) -> None:
        await store.aggregate(**options)

    with pytest.raises(ValueError):  # noqa: PT011
        on_store(scenario)


def query_of(on_store: OnStore, records: list[CallRecord], **options: Any) -> list[str]:
    async def scenario(store: LedgerStore) -> list[str]:
        await store.write_batch(records)
        return [record.request_id for record in await store.query(**options)]

    result: list[str] = on_store(scenario)
    return result


def test_search_matches_a_substring_of_any_searchable_field_ignoring_case(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, prompt_text="Tell me about PostgreSQL"),
        make_record(2, answer_text="postgres is a database"),
        make_record(3, end_user="POSTGRES-fan"),
        make_record(4, prompt_text="nothing here"),
    ]
    found = query_of(on_store, records, search="PostGres", newest_first=False)
    assert found == ["req_000001", "req_000002", "req_000003"]


def test_search_treats_like_wildcards_literally(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, prompt_text="100% sure"),
        make_record(2, prompt_text="100 percent"),
        make_record(3, prompt_text="snake_case"),
        make_record(4, prompt_text="snakeXcase"),
    ]
    assert query_of(on_store, records, search="100%") == ["req_000001"]
    assert query_of(on_store, [], search="e_c") == ["req_000003"]


def test_search_ignores_case_beyond_ascii(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [make_record(1, prompt_text="RÉSUMÉ please"), make_record(2, prompt_text="resume")]
    assert query_of(on_store, records, search="résumé") == ["req_000001"]


def test_errors_only_keeps_statuses_from_400(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, status=200),
        make_record(2, status=399),
        make_record(3, status=400),
        make_record(4, status=529),
    ]
    assert query_of(on_store, records, errors_only=True) == ["req_000004", "req_000003"]
