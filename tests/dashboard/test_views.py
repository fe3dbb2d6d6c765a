"""The dashboard's data over HTTP against the ledger: the overview's sums, the calls table's
filters and cursor pages, a call's every field, bounded answers and clear refusals."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from tests.dashboard.conftest import ADMIN_TOKEN, Site


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    answer = httpx.post(f"{site.url}/dashboard/session", json={"token": ADMIN_TOKEN}, timeout=30)
    with httpx.Client(base_url=site.url, cookies=answer.cookies, timeout=30) as signed_in:
        yield signed_in


def test_the_overview_sums_are_the_ledgers(site: Site, client: httpx.Client) -> None:
    records = site.records()
    doc = client.get("/dashboard/api/overview", params={"range": "24h"}).json()
    totals = doc["totals"]
    assert totals["calls"] == len(records)
    assert totals["error_calls"] == sum(r.status >= 400 for r in records)
    assert totals["truncated_calls"] == sum(r.truncated for r in records)
    priced = [r.cost_usd for r in records if r.cost_usd is not None]
    assert Decimal(totals["cost_usd"]) == sum(priced, Decimal(0))
    assert len(doc["buckets"]) == len(doc["series"]["calls"]) <= 25
    assert sum(doc["series"]["calls"]) == len(records)
    by_model = {group["name"]: Decimal(group["cost_usd"]) for group in doc["spend"]["groups"]}
    gpt = sum(
        (r.cost_usd for r in records if r.model_served == "gpt-4o-mini" and r.cost_usd), Decimal(0)
    )
    assert by_model["gpt-4o-mini"] == gpt
    team = client.get("/dashboard/api/overview", params={"spend_by": "team"}).json()
    assert {group["name"] for group in team["spend"]["groups"]} == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/dashboard/api/overview?range=2y", "range"),
        ("/dashboard/api/overview?spend_by=colour", "spend_by"),
        ("/dashboard/api/calls?limit=201", "limit"),
        ("/dashboard/api/calls?limit=0", "limit"),
        ("/dashboard/api/calls?status=teapot", "status"),
        ("/dashboard/api/calls?since=yesterday", "since"),
        ("/dashboard/api/calls?since=2026-01-01T00:00:00", "since"),
        ("/dashboard/api/calls?truncated=maybe", "truncated"),
        ("/dashboard/api/evals?limit=100000", "limit"),
    ],
)
def test_bad_parameters_are_refused_naming_them(
    client: httpx.Client, path: str, param: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert param in answer.json()["error"]["message"]


def test_unknown_views_and_calls_are_404(site: Site, client: httpx.Client) -> None:
    assert client.get("/dashboard/api/secrets").status_code == 404
    assert client.get("/dashboard/api/calls/th_nope").status_code == 404
    assert client.get("/dashboard/nothing").status_code == 404
    assert client.put("/dashboard/session").status_code == 405


def test_calls_come_in_cursor_pages_in_the_ledgers_order(site: Site, client: httpx.Client) -> None:
    expected = [r.request_id for r in site.records()]  # newest first, as the table
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = client.get("/dashboard/api/calls", params=params).json()
        assert len(page["calls"]) <= 4
        seen += [call["request_id"] for call in page["calls"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


def test_the_calls_filters_match_the_ledger(site: Site, client: httpx.Client) -> None:
    records = site.records()
    beta = site.keys["beta"]["key_id"]

    def ids(**params: str) -> set[str]:
        page = client.get("/dashboard/api/calls", params={"limit": "200", **params}).json()
        return {call["request_id"] for call in page["calls"]}

    assert ids(key=beta) == {r.request_id for r in records if r.key_id == beta}
    assert ids(status="errors") == {r.request_id for r in records if r.status >= 400}
    assert ids(status="404", error_type="not_found_error") == {
        r.request_id for r in records if r.status == 404
    }
    assert ids(truncated="true") == {r.request_id for r in records if r.truncated}
    assert ids(variant="canary") == {r.request_id for r in records if r.variant == "canary"}
    assert ids(user="user-1") == {r.request_id for r in records if r.end_user == "user-1"}
    assert ids(model="gpt-4o-mini") == {
        r.request_id for r in records if r.model_served == "gpt-4o-mini"
    }
    assert ids(q="HELLO NUMBER 3") == {
        r.request_id for r in records if "hello number 3" in (r.prompt_text or "")
    }
    assert ids(since="2999-01-01T00:00:00Z") == set()


def test_a_calls_detail_has_every_field_of_its_record(site: Site, client: httpx.Client) -> None:
    record = next(r for r in site.records() if r.request_id == site.hostile_request_id)
    doc = client.get(f"/dashboard/api/calls/{record.request_id}").json()
    assert doc["prompt_text"] == record.prompt_text
    assert doc["answer_text"] == record.answer_text
    assert doc["cost_usd"] == format(record.cost_usd, "f")
    for field in ("key_id", "team", "route", "model_served", "latency_ms", "truncated", "metadata"):
        assert field in doc


def test_replay_refuses_a_call_without_text_and_an_unknown_one(
    site: Site, client: httpx.Client
) -> None:
    csrf = client.get("/dashboard/session").json()["csrf_token"]
    headers = {"x-csrf-token": csrf}
    refused = next(r for r in site.records() if r.status == 404)
    answer = client.post(f"/dashboard/api/calls/{refused.request_id}/replay", headers=headers)
    assert answer.status_code in (200, 400)
    if answer.status_code == 200:  # its text is kept: replayed, refused again the same way
        assert answer.json()["replay"]["status"] == 404
    assert client.post("/dashboard/api/calls/th_nope/replay", headers=headers).status_code == 404


def test_rollout_actions_refuse_bad_bodies(client: httpx.Client) -> None:
    csrf = client.get("/dashboard/session").json()["csrf_token"]
    headers = {"x-csrf-token": csrf}
    missing = client.post(
        "/dashboard/api/rollouts/promote", json={"route": "support"}, headers=headers
    )
    assert missing.status_code == 400
    too_much = client.post(
        "/dashboard/api/rollouts/promote",
        json={"route": "support", "variant": "canary", "to": 150},
        headers=headers,
    )
    assert (too_much.status_code, too_much.json()["error"]["type"]) == (
        400,
        "invalid_request_error",
    )
    unknown = client.post(
        "/dashboard/api/rollouts/rollback", json={"route": "nope", "variant": "x"}, headers=headers
    )
    assert unknown.status_code in (400, 404)
    not_json = client.post(
        "/dashboard/api/rollouts/rollback",
        content=b"{",
        headers={**headers, "content-type": "application/json"},
    )
    assert not_json.status_code == 400
