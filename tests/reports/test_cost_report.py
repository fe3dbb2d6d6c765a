"""`cost_report`: Anthropic's cost report over the ledger, in exact cents, on SQLite and on
the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tollhouse.errors import BadRequest
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.reports import cost_report
from tollhouse.reports.cost import cents

OnStore = Callable[[Callable[[LedgerStore], Awaitable[Any]]], Any]
MakeRecord = Callable[..., CallRecord]

DAY = datetime(2026, 11, 25, tzinfo=UTC)
NOW = DAY + timedelta(days=3, hours=5)
ONE_DAY = "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z"


def report(on_store: OnStore, records: list[CallRecord], query: str) -> dict[str, Any]:
    params: dict[str, list[str]] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        params.setdefault(name, []).append(value)

    async def scenario(store: LedgerStore) -> dict[str, Any]:
        await store.write_batch(records)
        return await cost_report(store, params, now=NOW)

    result: dict[str, Any] = on_store(scenario)
    return result


def only_result(body: dict[str, Any]) -> dict[str, Any]:
    (bucket,) = body["data"]
    (result,) = bucket["results"]
    found: dict[str, Any] = result
    return found


def test_a_day_of_spend_reads_as_anthropic_reports_it(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, cost_usd=Decimal("1.25")),
        make_record(2, cost_usd=Decimal("0.0001")),
    ]
    assert report(on_store, records, ONE_DAY) == {
        "data": [
            {
                "starting_at": "2026-11-25T00:00:00Z",
                "ending_at": "2026-11-26T00:00:00Z",
                "results": [
                    {
                        "currency": "USD",
                        "amount": "125.01",
                        "description": None,
                        "cost_type": None,
                        "context_window": None,
                        "service_tier": None,
                        "token_type": None,
                        "inference_geo": None,
                        "speed": None,
                        "workspace_id": None,
                        "api_key_id": None,
                        "model": None,
                        "model_requested": None,
                        "end_user": None,
                        "team": None,
                        "project": None,
                        "provider": None,
                        "route": None,
                        "variant": None,
                        "config_version": None,
                        "system_prompt": None,
                        "unpriced_calls": 0,
                        "commitment_calls": 0,
                        "commitment_amount": "0",
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }


def test_amount_is_the_exact_sum_in_cents(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [make_record(1, cost_usd=Decimal("0.1")), make_record(2, cost_usd=Decimal("0.2"))]
    assert only_result(report(on_store, records, ONE_DAY))["amount"] == "30"


def test_many_small_costs_add_up_exactly(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [make_record(n, cost_usd=Decimal("0.000270")) for n in range(1000)]
    assert only_result(report(on_store, records, ONE_DAY))["amount"] == "27"


def test_calls_with_unknown_cost_are_counted_apart(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1, cost_usd=Decimal("0.02")), make_record(2, cost_usd=None)]
    result = only_result(report(on_store, records, ONE_DAY))
    assert (result["amount"], result["unpriced_calls"]) == ("2", 1)


def test_group_by_description_names_the_model_of_each_cost(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, model_served="m-a", cost_usd=Decimal("0.01")),
        make_record(2, model_served="m-b", cost_usd=Decimal("0.03")),
    ]
    (bucket,) = report(on_store, records, f"{ONE_DAY}&group_by[]=description")["data"]
    assert [
        (r["model"], r["description"], r["cost_type"], r["amount"]) for r in bucket["results"]
    ] == [
        ("m-a", "m-a usage (not itemized)", "tokens", "1"),
        ("m-b", "m-b usage (not itemized)", "tokens", "3"),
    ]


def test_gateway_dimensions_split_the_spend(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, team="search", cost_usd=Decimal("0.5")),
        make_record(2, team="ads", cost_usd=Decimal("0.25")),
        make_record(3, team="search", cost_usd=Decimal("0.5")),
    ]
    (bucket,) = report(on_store, records, f"{ONE_DAY}&group_by[]=team&group_by[]=workspace_id")[
        "data"
    ]
    assert [(r["team"], r["workspace_id"], r["amount"]) for r in bucket["results"]] == [
        ("ads", None, "25"),
        ("search", None, "100"),
    ]


def test_days_without_spend_are_listed_with_empty_results(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1, ts=DAY + timedelta(days=2))]
    body = report(on_store, records, "starting_at=2026-11-25T00:00:00Z")
    assert [len(bucket["results"]) for bucket in body["data"]] == [0, 0, 1, 0]


@pytest.mark.parametrize(
    ("dollars", "amount"),
    [
        ("0", "0"),
        ("1", "100"),
        ("0.000270", "0.027"),
        ("0.0000000001", "0.00000001"),
        ("12345.6789", "1234567.89"),
    ],
)
def test_cents_shift_the_decimal_point_exactly(dollars: str, amount: str) -> None:
    assert cents(Decimal(dollars)) == amount


@pytest.mark.parametrize(
    ("query", "param"),
    [
        (f"{ONE_DAY}&bucket_width=1h", "bucket_width"),
        (f"{ONE_DAY}&limit=32", "limit"),
        (f"{ONE_DAY}&group_by[]=account_id", "group_by"),
        ("ending_at=2026-11-26T00:00:00Z", "starting_at"),
        ("starting_at=2026-11-25T00:00:00+01:00&ending_at=2026-11-24T23:00:00Z", "ending_at"),
        (f"{ONE_DAY}&page=page_", "page"),
    ],
)
def test_a_bad_parameter_is_refused_by_name(on_store: OnStore, query: str, param: str) -> None:
    with pytest.raises(BadRequest) as refused:
        report(on_store, [], query)
    assert refused.value.param == param
