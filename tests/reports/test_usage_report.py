"""`usage_report`: Anthropic's Messages usage report over the ledger, on SQLite and on the
real PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tollhouse.errors import BadRequest
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.reports import usage_report

OnStore = Callable[[Callable[[LedgerStore], Awaitable[Any]]], Any]
MakeRecord = Callable[..., CallRecord]

DAY = datetime(2026, 11, 25, tzinfo=UTC)
NOW = DAY + timedelta(days=3, hours=5, minutes=30)


def report(on_store: OnStore, records: list[CallRecord], query: str) -> dict[str, Any]:
    params = parse(query)

    async def scenario(store: LedgerStore) -> dict[str, Any]:
        await store.write_batch(records)
        return await usage_report(store, params, now=NOW)

    result: dict[str, Any] = on_store(scenario)
    return result


def parse(query: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        params.setdefault(name, []).append(value)
    return params


def results(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [bucket["results"] for bucket in body["data"]]


def test_a_day_of_calls_reads_as_anthropic_reports_it(
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
        ),
        make_record(
            2,
            input_tokens=200,
            output_tokens=20,
            cache_write_5m_tokens=1,
            cache_write_1h_tokens=2,
            cache_read_tokens=3,
            status=500,
        ),
    ]
    body = report(
        on_store, records, "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z"
    )
    assert body == {
        "data": [
            {
                "starting_at": "2026-11-25T00:00:00Z",
                "ending_at": "2026-11-26T00:00:00Z",
                "results": [
                    {
                        "uncached_input_tokens": 300,
                        "cache_creation": {
                            "ephemeral_1h_input_tokens": 9,
                            "ephemeral_5m_input_tokens": 6,
                        },
                        "cache_read_input_tokens": 53,
                        "output_tokens": 30,
                        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
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
                        "service_tier": None,
                        "context_window": None,
                        "inference_geo": None,
                        "speed": None,
                        "requests": 2,
                        "error_requests": 1,
                        "cache_hit_ratio": 0.144,  # 53 read of 300 + 6 + 9 + 53
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }


def test_buckets_without_calls_are_listed_with_empty_results(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1, ts=DAY + timedelta(days=1, hours=3))]
    body = report(
        on_store, records, "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-28T00:00:00Z"
    )
    assert [bucket["starting_at"] for bucket in body["data"]] == [
        "2026-11-25T00:00:00Z",
        "2026-11-26T00:00:00Z",
        "2026-11-27T00:00:00Z",
    ]
    assert [len(found) for found in results(body)] == [0, 1, 0]


def test_starting_at_is_snapped_to_the_start_of_its_bucket(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1, ts=DAY + timedelta(hours=10, minutes=5))]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T10:30:00Z&ending_at=2026-11-25T11:00:00Z&bucket_width=1h",
    )
    assert body["data"][0]["starting_at"] == "2026-11-25T10:00:00Z"
    assert body["data"][0]["results"][0]["requests"] == 1


def test_without_ending_at_the_report_runs_to_the_bucket_now_running(on_store: OnStore) -> None:
    body = report(on_store, [], "starting_at=2026-11-28T00:00:00Z&bucket_width=1h")
    assert [bucket["starting_at"] for bucket in body["data"]] == [
        f"2026-11-28T0{hour}:00:00Z" for hour in range(6)
    ]
    assert body["has_more"] is False


def test_group_by_model_and_api_key_gives_one_result_per_pair(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, model_served="m-a", key_id="k1"),
        make_record(2, model_served="m-a", key_id="k2"),
        make_record(3, model_served="m-a", key_id="k1"),
    ]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&group_by[]=model&group_by[]=api_key_id",
    )
    (found,) = results(body)
    assert [(r["model"], r["api_key_id"], r["requests"]) for r in found] == [
        ("m-a", "k1", 2),
        ("m-a", "k2", 1),
    ]
    assert {r["end_user"] for r in found} == {None}


def test_group_by_without_brackets_is_accepted(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [make_record(1, team="a"), make_record(2, team="b")]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&group_by=team",
    )
    assert [r["team"] for r in results(body)[0]] == ["a", "b"]


def test_calls_recorded_without_billing_dimensions_group_as_null(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(1), make_record(2)]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&group_by[]=workspace_id&group_by[]=service_tier&group_by[]=context_window",
    )
    (found,) = results(body)
    assert [
        (r["workspace_id"], r["service_tier"], r["context_window"], r["requests"]) for r in found
    ] == [(None, None, None, 2)]


def test_gateway_dimensions_group_too(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, end_user="ann", project="p", provider="anthropic"),
        make_record(2, end_user="bob", project="p", provider="openai"),
    ]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&group_by[]=end_user&group_by[]=project&group_by[]=provider",
    )
    assert [(r["end_user"], r["project"], r["provider"]) for r in results(body)[0]] == [
        ("ann", "p", "anthropic"),
        ("bob", "p", "openai"),
    ]


def test_filters_restrict_the_calls_counted(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, model_served="m-a", end_user="ann", input_tokens=1),
        make_record(2, model_served="m-a", end_user="bob", input_tokens=10),
        make_record(3, model_served="m-b", end_user="ann", input_tokens=100),
        make_record(4, model_served="m-c", end_user="ann", input_tokens=1000),
    ]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&models[]=m-a&models[]=m-b&end_users[]=ann",
    )
    assert results(body)[0][0]["uncached_input_tokens"] == 101


def test_limit_defaults_to_a_day_of_hours(on_store: OnStore) -> None:
    body = report(
        on_store,
        [],
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-27T00:00:00Z&bucket_width=1h",
    )
    assert len(body["data"]) == 24
    assert body["has_more"] is True


def test_pages_follow_each_other_until_the_range_ends(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [make_record(n, ts=DAY + timedelta(days=n)) for n in range(3)]
    query = "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-28T00:00:00Z&limit=2"
    first = report(on_store, records, query)
    assert [b["starting_at"] for b in first["data"]] == [
        "2026-11-25T00:00:00Z",
        "2026-11-26T00:00:00Z",
    ]
    assert first["has_more"] is True
    second = report(on_store, [], f"{query}&page={first['next_page']}")
    assert [b["starting_at"] for b in second["data"]] == ["2026-11-27T00:00:00Z"]
    assert [len(found) for found in results(second)] == [1]
    assert (second["has_more"], second["next_page"]) == (False, None)


def test_an_ending_at_inside_a_bucket_counts_calls_before_it_only(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, ts=DAY + timedelta(hours=1)),
        make_record(2, ts=DAY + timedelta(hours=13)),
    ]
    body = report(
        on_store, records, "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-25T12:00:00Z"
    )
    assert results(body)[0][0]["requests"] == 1


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("bucket_width=1d", "starting_at"),
        ("starting_at=yesterday", "starting_at"),
        ("starting_at=2026-11-25", "starting_at"),
        ("starting_at=2026-11-25T00:00:00", "starting_at"),
        ("starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-24T00:00:00Z", "ending_at"),
        ("starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-25T00:00:00Z", "ending_at"),
        ("starting_at=2026-11-25T00:00:00Z&limit=0", "limit"),
        ("starting_at=2026-11-25T00:00:00Z&limit=32", "limit"),
        ("starting_at=2026-11-25T00:00:00Z&bucket_width=1h&limit=169", "limit"),
        ("starting_at=2026-11-25T00:00:00Z&bucket_width=1m&limit=1441", "limit"),
        ("starting_at=2026-11-25T00:00:00Z&limit=seven", "limit"),
        ("starting_at=2026-11-25T00:00:00Z&page=garbage", "page"),
        ("starting_at=2026-11-25T00:00:00Z&page=page_!!!", "page"),
        ("starting_at=2026-11-25T00:00:00Z&page=page_MjAyNS0wMS0wMVQwMDowMDowMFo=", "page"),
        ("starting_at=2026-11-25T00:00:00Z&bucket_width=1w", "bucket_width"),
        ("starting_at=2026-11-25T00:00:00Z&group_by[]=colour", "group_by"),
        ("starting_at=2026-11-25T00:00:00Z&workspace_ids[]=wrkspc_1", "workspace_ids"),
    ],
)
def test_a_bad_parameter_is_refused_by_name(on_store: OnStore, query: str, param: str) -> None:
    with pytest.raises(BadRequest) as refused:
        report(on_store, [], query)
    assert refused.value.param == param
    assert refused.value.message.startswith(param)


def test_usage_groups_by_route_and_variant(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, route="support", variant="control"),
        make_record(2, route="support", variant="canary"),
        make_record(3, route="support", variant="canary"),
    ]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&group_by[]=route&group_by[]=variant",
    )
    (bucket,) = body["data"]
    assert [(r["route"], r["variant"], r["requests"]) for r in bucket["results"]] == [
        ("support", "canary", 2),
        ("support", "control", 1),
    ]


def test_usage_filters_on_a_variant(on_store: OnStore, make_record: MakeRecord) -> None:
    records = [
        make_record(1, route="support", variant="control"),
        make_record(2, route="support", variant="canary"),
    ]
    body = report(
        on_store,
        records,
        "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z&variants[]=canary",
    )
    (bucket,) = body["data"]
    assert [r["requests"] for r in bucket["results"]] == [1]


def test_usage_groups_and_filters_by_config_version(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, config_version=9),
        make_record(2, config_version=10),
        make_record(3, config_version=10),
        make_record(4),  # recorded before config versions: no version
    ]
    day = "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z"
    body = report(on_store, records, day + "&group_by[]=config_version")
    (bucket,) = body["data"]
    assert [(r["config_version"], r["requests"]) for r in bucket["results"]] == [
        ("10", 2),
        ("9", 1),
        (None, 1),
    ]
    body = report(on_store, records, day + "&config_versions[]=10")
    (bucket,) = body["data"]
    assert [(r["config_version"], r["requests"]) for r in bucket["results"]] == [(None, 2)]


def test_usage_groups_and_filters_by_system_prompt_with_its_cache_hit_ratio(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, system_prompt_hash="aaaa", input_tokens=100, cache_read_tokens=900),
        make_record(2, system_prompt_hash="aaaa", input_tokens=100, cache_write_5m_tokens=900),
        make_record(3, system_prompt_hash="bbbb", input_tokens=50),
        make_record(4, input_tokens=0),  # no system prompt, no input
    ]
    day = "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z"
    body = report(on_store, records, day + "&group_by[]=system_prompt")
    (bucket,) = body["data"]
    assert [
        (r["system_prompt"], r["requests"], r["cache_hit_ratio"]) for r in bucket["results"]
    ] == [("aaaa", 2, 0.45), ("bbbb", 1, 0.0), (None, 1, None)]
    body = report(on_store, records, day + "&system_prompts[]=bbbb")
    (bucket,) = body["data"]
    assert [(r["system_prompt"], r["requests"]) for r in bucket["results"]] == [(None, 1)]


def test_billing_dimensions_group_filter_and_count_server_tools(
    on_store: OnStore, make_record: MakeRecord
) -> None:
    records = [
        make_record(1, service_tier="priority", speed="fast", web_search_requests=3),
        make_record(2, service_tier="standard", inference_geo="us", web_fetch_requests=1),
        make_record(3, service_tier="standard", context_window="200k-1M", web_search_requests=2),
    ]
    day = "starting_at=2026-11-25T00:00:00Z&ending_at=2026-11-26T00:00:00Z"
    (found,) = results(report(on_store, records, f"{day}&group_by[]=service_tier"))
    assert [
        (r["service_tier"], r["requests"], r["server_tool_use"]["web_search_requests"])
        for r in found
    ] == [("priority", 1, 3), ("standard", 2, 2)]
    (fast,) = results(report(on_store, records, f"{day}&speeds[]=fast"))
    assert [r["requests"] for r in fast] == [1]
    (grouped,) = results(
        report(on_store, records, f"{day}&group_by[]=inference_geo&group_by[]=context_window")
    )
    assert [(r["inference_geo"], r["context_window"], r["requests"]) for r in grouped] == [
        ("us", None, 1),
        (None, "200k-1M", 1),
        (None, None, 1),
    ]
    (everything,) = results(report(on_store, records, day))
    assert everything[0]["server_tool_use"] == {"web_search_requests": 5, "web_fetch_requests": 1}
