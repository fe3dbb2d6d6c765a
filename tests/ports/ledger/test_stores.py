"""What every ledger store does, checked on SQLite and on the real PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tollhouse.ports.ledger.base import LedgerRejected, LedgerStore
from tollhouse.ports.ledger.record import CallRecord

OnStore = Callable[[Callable[[LedgerStore], Awaitable[Any]]], Any]
MakeRecord = Callable[..., CallRecord]
NewStore = Callable[[], LedgerStore]


def every_field_set() -> CallRecord:
    return CallRecord(
        request_id="req_full",
        ts=datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC),
        upstream_request_id="msg_01XFDUDYJgAACzvnptvVoYEL",
        key_id="key_7",
        end_user="user-42",
        team="search",
        project="assistant",
        session_id="sess_9",
        client_format="openai",
        endpoint="/v1/chat/completions",
        model_requested="claude-sonnet-4-5",
        model_served="claude-sonnet-4-5-20250929",
        provider="anthropic",
        route="claude-sonnet-4-5/canary",
        variant="canary",
        system_prompt_hash="sha256:9f86d081884c7d65",
        stop_reason="max_tokens",
        input_tokens=201_337,
        output_tokens=4096,
        cache_write_5m_tokens=1024,
        cache_write_1h_tokens=2048,
        cache_read_tokens=150_000,
        reasoning_tokens=512,
        usage_estimated=True,
        latency_ms=2345.678,
        ttft_ms=312.25,
        attempts=3,
        fallback_used=True,
        cache_hit=True,
        cost_usd=Decimal("1.234567890123"),
        cost_avoided_usd=Decimal("0.000123456789"),
        status=200,
        error_type="overloaded_error",
        truncated=True,
        stream=True,
        prompt_text="Résumé ✓ 日本語 — [REDACTED]",
        answer_text='It\'s "quoted"\nand multi-line',
        custom_id="request-17",
        metadata={"tags": ["a", "b"], "depth": {"n": 1, "ok": True, "ratio": 0.5}, "none": None},
    )


def test_every_field_round_trips(on_store: OnStore) -> None:
    record = every_field_set()

    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch([record])
        return await store.query()

    assert on_store(scenario) == [record]


def test_unset_fields_read_back_as_none_and_defaults(on_store: OnStore) -> None:
    record = CallRecord(
        request_id="req_min",
        ts=datetime(2026, 11, 25, tzinfo=UTC),
        client_format="anthropic",
        endpoint="/v1/messages",
        model_requested="claude-haiku-4-5",
        status=529,
    )

    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch([record])
        return await store.query()

    [read] = on_store(scenario)
    assert read == record
    assert (read.cost_usd, read.ttft_ms, read.model_served, read.metadata) == (None, None, None, {})


@pytest.mark.parametrize(
    "cost",
    [Decimal("0.0000000375"), Decimal("0.000000003750001"), Decimal("123456789.123456789012")],
)
def test_cost_keeps_every_decimal_place(
    on_store: OnStore, make_record: MakeRecord, cost: Decimal
) -> None:
    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch([make_record(cost_usd=cost)])
        return await store.query()

    [read] = on_store(scenario)
    assert read.cost_usd == cost
    assert isinstance(read.cost_usd, Decimal)


def test_count_is_the_number_of_distinct_calls(on_store: OnStore, make_record: MakeRecord) -> None:
    async def scenario(store: LedgerStore) -> tuple[int, int]:
        empty = await store.count()
        await store.write_batch([make_record(n) for n in range(7)])
        return empty, await store.count()

    assert on_store(scenario) == (0, 7)


def test_writing_a_request_id_again_keeps_the_first_record(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    first = make_record(1, status=200)
    replayed = make_record(1, status=500)

    async def scenario(store: LedgerStore) -> tuple[int, list[CallRecord]]:
        await store.write_batch([first, make_record(2)])
        await store.write_batch([replayed, make_record(2), make_record(3)])
        return await store.count(), await store.query(filters={"status": 500})

    assert on_store(scenario) == (3, [])


def test_a_batch_holding_the_same_call_twice_writes_it_once(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    async def scenario(store: LedgerStore) -> int:
        await store.write_batch([make_record(1), make_record(1), make_record(2)])
        return await store.count()

    assert on_store(scenario) == 2


def test_a_batch_is_one_transaction(on_store: OnStore, make_record: MakeRecord) -> None:
    # A token count past 64 bits can't be stored anywhere: the whole batch is refused,
    # nothing of it is left behind, and the error says it is the data's fault.
    batch = [make_record(1), make_record(2, input_tokens=2**70), make_record(3)]

    async def scenario(store: LedgerStore) -> int:
        with pytest.raises(LedgerRejected):
            await store.write_batch(batch)
        return await store.count()

    assert on_store(scenario) == 0


def test_a_nul_in_client_supplied_text_does_not_refuse_the_batch(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    # PostgreSQL text can't hold NUL; the store keeps the record (NUL shown as U+FFFD)
    # rather than refuse the call and its whole batch.
    record = make_record(1, end_user="eve\x00", metadata={"k\x00": ["v\x00"]})

    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch([record, make_record(2)])
        return await store.query(filters={"key_id": "key_a"}, newest_first=False)

    first, second = on_store(scenario)
    assert first.end_user in ("eve\x00", "eve\ufffd")
    assert second == make_record(2)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("model_served", "gpt-4o-mini"),
        ("key_id", "key_b"),
        ("end_user", "user-2"),
        ("team", "ml"),
        ("project", "chatbot"),
        ("status", 429),
        ("error_type", "rate_limit_error"),
    ],
)
def test_query_filters_on_equality(
    on_store: OnStore, make_record: MakeRecord, column: str, value: Any
) -> None:
    match = make_record(2, **{column: value})

    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch([make_record(1), match, make_record(3)])
        return await store.query(filters={column: value})

    assert on_store(scenario) == [match]


def test_query_filters_combine_with_and(on_store: OnStore, make_record: MakeRecord) -> None:
    both = make_record(3, team="ml", status=500)
    records = [make_record(1, team="ml"), make_record(2, status=500), both]

    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch(records)
        return await store.query(filters={"team": "ml", "status": 500})

    assert on_store(scenario) == [both]


def test_query_filter_on_none_matches_unset(on_store: OnStore, make_record: MakeRecord) -> None:
    success = make_record(1)
    failure = make_record(2, status=529, error_type="overloaded_error")

    async def scenario(store: LedgerStore) -> list[CallRecord]:
        await store.write_batch([success, failure])
        return await store.query(filters={"error_type": None})

    assert on_store(scenario) == [success]


def test_query_refuses_a_column_it_does_not_filter_on(on_store: OnStore) -> None:
    async def scenario(store: LedgerStore) -> None:
        with pytest.raises(ValueError, match="can't filter on 'prompt_text'"):
            await store.query(filters={"prompt_text": "x"})
        with pytest.raises(ValueError, match="can't filter on"):
            await store.query(filters={"1=1; DROP TABLE calls; --": 1})

    on_store(scenario)


def test_query_time_range_includes_since_and_excludes_until(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n) for n in range(6)]

    async def scenario(store: LedgerStore) -> list[str]:
        await store.write_batch(records)
        found = await store.query(since=records[2].ts, until=records[4].ts, newest_first=False)
        return [record.request_id for record in found]

    assert on_store(scenario) == ["req_000002", "req_000003"]


def test_query_bounds_in_another_zone_mean_the_same_instant(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n) for n in range(3)]
    in_paris = records[1].ts.astimezone(ZoneInfo("Europe/Paris"))  # 13:00:01 there

    async def scenario(store: LedgerStore) -> list[str]:
        await store.write_batch(records)
        return [record.request_id for record in await store.query(until=in_paris)]

    assert on_store(scenario) == ["req_000000"]


def test_query_refuses_naive_bounds(on_store: OnStore) -> None:
    async def scenario(store: LedgerStore) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.query(since=datetime(2026, 1, 1))

    on_store(scenario)


def test_query_is_newest_first_unless_asked_otherwise(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n) for n in (3, 1, 2)]

    async def scenario(store: LedgerStore) -> tuple[list[str], list[str]]:
        await store.write_batch(records)
        newest = [record.request_id for record in await store.query()]
        oldest = [record.request_id for record in await store.query(newest_first=False)]
        return newest, oldest

    newest, oldest = on_store(scenario)
    assert newest == ["req_000003", "req_000002", "req_000001"]
    assert oldest == list(reversed(newest))


def test_calls_of_the_same_instant_keep_the_order_they_were_written(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    instant = make_record().ts

    async def scenario(store: LedgerStore) -> list[str]:
        await store.write_batch([make_record(2, ts=instant)])
        await store.write_batch([make_record(1, ts=instant)])
        return [record.request_id for record in await store.query(newest_first=False)]

    assert on_store(scenario) == ["req_000002", "req_000001"]


def test_query_returns_at_most_limit_records(on_store: OnStore, make_record: MakeRecord) -> None:
    async def scenario(store: LedgerStore) -> list[str]:
        await store.write_batch([make_record(n) for n in range(10)])
        return [record.request_id for record in await store.query(limit=3)]

    assert on_store(scenario) == ["req_000009", "req_000008", "req_000007"]


def test_a_store_opens_itself_on_first_use(new_store: NewStore, make_record: MakeRecord) -> None:
    async def scenario() -> int:
        store = new_store()
        try:
            await store.write_batch([make_record(1)])
            return await store.count()
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == 1


def test_a_notice_is_claimed_once_across_stores_on_the_same_database(
    new_store: NewStore,
) -> None:
    async def scenario() -> list[bool]:
        claims = []
        for _ in range(2):  # a second store on the same database: a restart, or a peer
            store = new_store()
            try:
                claims.append(await store.claim_notice("n:1", datetime.now(UTC)))
                claims.append(await store.claim_notice("n:1", datetime.now(UTC)))
                claims.append(await store.claim_notice(f"n:{len(claims)}", datetime.now(UTC)))
            finally:
                await store.aclose()
        return claims

    assert asyncio.run(scenario()) == [True, False, True, False, False, True]
