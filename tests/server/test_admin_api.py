"""The admin API over HTTP: the admin token, gateway keys, usage and cost reports.

A real gateway on loopback with its ledger and key store in SQLite files of the test's
own. The installed `anthropic` SDK has no methods for the Usage & Cost report endpoints
(its `beta.organization.analytics` are other endpoints), so reports are read with httpx;
the SDK's generic `get` shows that refusals reach it as its own exception classes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.ports.keys.admin_token import ADMIN_TOKEN_ENV
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.runner import BackgroundServer

ADMIN_TOKEN = "th-admin-test-token"
ADMIN = {"x-api-key": ADMIN_TOKEN}
USAGE = "/v1/organizations/usage_report/messages"
COST = "/v1/organizations/cost_report"
HI = [{"role": "user", "content": "hello"}]


@dataclass(frozen=True)
class Served:
    url: str
    ledger_path: Path

    def records(self) -> list[CallRecord]:
        async def read() -> list[CallRecord]:
            store = SQLiteLedgerStore(self.ledger_path)
            try:
                return await store.query(limit=1000, newest_first=False)
            finally:
                await store.aclose()

        return asyncio.run(read())

    def wait_for_records(self, count: int) -> list[CallRecord]:
        """The ledger once it holds `count` records (they reach it asynchronously)."""
        deadline = time.monotonic() + 5
        while True:
            records = self.records()
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.02)


Serve = Callable[..., Served]


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Serve a gateway of the test's own; `admin_token` None leaves the variable unset;
    `ledger_text` is its `ledger.text`."""
    servers: list[BackgroundServer] = []

    def start(
        admin_token: str | None = ADMIN_TOKEN, ledger_text: str = "off", **sections: Any
    ) -> Served:
        directory = tmp_path / f"gateway{len(servers)}"
        directory.mkdir()
        config = {
            **IN_PROCESS_CONFIG,
            "ledger": {
                "sqlite_path": str(directory / "ledger.db"),
                "spill_path": str(directory / "ledger.spill"),
                "flush_interval": 0.01,
                "text": ledger_text,
            },
            "keys": {"sqlite_path": str(directory / "keys.db")},
            "limits": {"max_body_bytes": 4096},
            **sections,
        }
        if admin_token is None:
            monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
        else:
            monkeypatch.setenv(ADMIN_TOKEN_ENV, admin_token)
        server = serve_gateway(config)
        servers.append(server)
        return Served(server.url, directory / "ledger.db")

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(serve: Serve) -> Served:
    return serve()


def create_key(url: str, **spec: Any) -> dict[str, Any]:
    response = httpx.post(url + "/admin/keys", headers=ADMIN, json={"name": "ci", **spec})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def since_yesterday() -> str:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (start - timedelta(days=1)).isoformat()


# The admin token


def test_an_admin_request_without_a_token_is_401(gateway: Served) -> None:
    response = httpx.get(gateway.url + "/admin/keys")
    assert response.status_code == 401
    assert "missing admin token" in response.json()["error"]["message"]


def test_an_admin_request_with_a_wrong_token_is_403(gateway: Served) -> None:
    response = httpx.get(gateway.url + "/admin/keys", headers={"x-api-key": "th-guess"})
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_the_admin_token_is_accepted_as_a_bearer_token(gateway: Served) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.get(gateway.url + "/admin/keys", headers=headers).status_code == 200


def test_a_gateway_key_is_not_an_admin_token(gateway: Served) -> None:
    response = httpx.get(gateway.url + USAGE, headers={"x-api-key": GATEWAY_KEY})
    assert response.status_code == 403


def test_without_a_configured_token_the_admin_api_is_disabled(serve: Serve) -> None:
    served = serve(admin_token=None)
    response = httpx.get(served.url + "/admin/keys", headers=ADMIN)
    assert response.status_code == 401
    assert "admin API is disabled" in response.json()["error"]["message"]


def test_an_unknown_admin_path_asks_for_the_token_before_saying_404(gateway: Served) -> None:
    assert httpx.get(gateway.url + "/admin/flags").status_code == 401
    assert httpx.get(gateway.url + "/admin/flags", headers=ADMIN).status_code == 404


def test_a_wrong_token_on_a_report_raises_the_anthropic_sdks_permission_error(
    gateway: Served,
) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="th-guess", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError, match="invalid admin token"):
        client.get(USAGE, cast_to=object, options={"params": {"starting_at": since_yesterday()}})


def test_a_refusal_on_keys_with_a_bearer_token_comes_in_the_openai_format(
    gateway: Served,
) -> None:
    response = httpx.get(gateway.url + "/admin/keys", headers={"authorization": "Bearer nope"})
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    assert "param" in response.json()["error"]  # OpenAI's error shape, not Anthropic's


# Keys


def test_create_answers_201_with_the_secret_once(gateway: Served) -> None:
    created = create_key(gateway.url, team="payments")
    assert created["secret"].startswith("th-")
    assert created["key_id"].startswith("key_")
    assert created["team"] == "payments"
    assert "secret_hash" not in created


def test_list_and_get_never_show_a_secret_or_its_hash(gateway: Served) -> None:
    created = create_key(gateway.url)
    listed = httpx.get(gateway.url + "/admin/keys", headers=ADMIN)
    one = httpx.get(f"{gateway.url}/admin/keys/{created['key_id']}", headers=ADMIN)
    assert [key["key_id"] for key in listed.json()["keys"]] == [created["key_id"]]
    for text in (listed.text, one.text):
        assert created["secret"] not in text
        assert "hash" not in text
    assert one.json()["status"] == "active"


def test_patch_changes_the_fields_given(gateway: Served) -> None:
    created = create_key(gateway.url)
    response = httpx.patch(
        f"{gateway.url}/admin/keys/{created['key_id']}",
        headers=ADMIN,
        json={"limits": {"rpm": 5}, "team": "search"},
    )
    assert response.status_code == 200
    assert response.json()["limits"]["rpm"] == 5
    assert response.json()["team"] == "search"


def test_patch_with_an_invalid_value_is_400_naming_the_field(gateway: Served) -> None:
    created = create_key(gateway.url)
    response = httpx.patch(
        f"{gateway.url}/admin/keys/{created['key_id']}",
        headers=ADMIN,
        json={"limits": {"rpm": 0}},
    )
    assert response.status_code == 400
    assert "$.limits.rpm" in response.json()["error"]["message"]


def test_revoked_keys_are_listed_only_with_include_revoked(gateway: Served) -> None:
    created = create_key(gateway.url)
    revoked = httpx.post(f"{gateway.url}/admin/keys/{created['key_id']}/revoke", headers=ADMIN)
    assert revoked.json()["status"] == "revoked"
    active = httpx.get(gateway.url + "/admin/keys", headers=ADMIN).json()["keys"]
    every = httpx.get(
        gateway.url + "/admin/keys", headers=ADMIN, params={"include_revoked": "true"}
    ).json()["keys"]
    assert (len(active), len(every)) == (0, 1)


def test_include_revoked_that_is_not_a_boolean_is_400_naming_it(gateway: Served) -> None:
    response = httpx.get(
        gateway.url + "/admin/keys", headers=ADMIN, params={"include_revoked": "maybe"}
    )
    assert response.status_code == 400
    assert "include_revoked" in response.json()["error"]["message"]


def test_rotate_answers_a_new_secret_and_names_the_old_prefix(gateway: Served) -> None:
    created = create_key(gateway.url)
    response = httpx.post(
        f"{gateway.url}/admin/keys/{created['key_id']}/rotate",
        headers=ADMIN,
        json={"grace_seconds": 60},
    )
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["secret"] not in ("", created["secret"])
    assert rotated["rotated_from"] == created["prefix"]


def test_an_unknown_key_id_is_404(gateway: Served) -> None:
    response = httpx.get(gateway.url + "/admin/keys/key_000000000000", headers=ADMIN)
    assert response.status_code == 404


def test_a_wrong_method_on_keys_is_405(gateway: Served) -> None:
    created = create_key(gateway.url)
    response = httpx.delete(f"{gateway.url}/admin/keys/{created['key_id']}", headers=ADMIN)
    assert response.status_code == 405


def test_a_body_that_is_not_json_is_415(gateway: Served) -> None:
    response = httpx.post(
        gateway.url + "/admin/keys",
        headers={**ADMIN, "content-type": "text/plain"},
        content=b"name=ci",
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


def test_malformed_json_is_400(gateway: Served) -> None:
    response = httpx.post(
        gateway.url + "/admin/keys",
        headers={**ADMIN, "content-type": "application/json"},
        content=b'{"name": ',
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_a_body_over_the_size_limit_is_413(gateway: Served) -> None:
    response = httpx.post(
        gateway.url + "/admin/keys", headers=ADMIN, json={"name": "ci", "team": "x" * 5000}
    )
    assert response.status_code == 413


def test_admin_answers_are_not_cached_along_the_way(gateway: Served) -> None:
    created = httpx.post(gateway.url + "/admin/keys", headers=ADMIN, json={"name": "ci"})
    assert created.headers["cache-control"] == "no-store"


# Reports


def test_usage_report_counts_the_tokens_the_sdk_clients_saw_per_model(gateway: Served) -> None:
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    gpt = openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    seen: dict[str, list[int]] = {}
    for _ in range(2):
        message = claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI)  # type: ignore[arg-type]
        tokens = seen.setdefault(message.model, [0, 0, 0])
        tokens[0] += message.usage.input_tokens
        tokens[1] += message.usage.output_tokens
        tokens[2] += 1
    completion = gpt.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    assert completion.usage is not None
    seen[completion.model] = [
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        1,
    ]
    gateway.wait_for_records(3)

    response = httpx.get(
        gateway.url + USAGE,
        headers=ADMIN,
        params={"starting_at": since_yesterday(), "group_by[]": "model"},
    )
    assert response.status_code == 200, response.text
    reported: dict[str, list[int]] = {}
    for bucket in response.json()["data"]:
        for result in bucket["results"]:
            tokens = reported.setdefault(result["model"], [0, 0, 0])
            tokens[0] += result["uncached_input_tokens"]
            tokens[1] += result["output_tokens"]
            tokens[2] += result["requests"]
    assert reported == seen


def test_cost_report_amount_is_the_ledgers_exact_cost_in_cents(gateway: Served) -> None:
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    for _ in range(3):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    records = gateway.wait_for_records(3)
    costs = [record.cost_usd for record in records]
    assert all(cost is not None and cost > 0 for cost in costs)
    expected = sum((cost for cost in costs if cost is not None), Decimal(0))

    response = httpx.get(
        gateway.url + COST, headers=ADMIN, params={"starting_at": since_yesterday()}
    )
    assert response.status_code == 200, response.text
    amounts = [
        Decimal(result["amount"])
        for bucket in response.json()["data"]
        for result in bucket["results"]
    ]
    assert all(
        result["currency"] == "USD" for b in response.json()["data"] for result in b["results"]
    )
    assert sum(amounts, Decimal(0)) == expected * 100


def test_a_bad_report_parameter_is_400_naming_it(gateway: Served) -> None:
    response = httpx.get(
        gateway.url + USAGE,
        headers=ADMIN,
        params={"starting_at": since_yesterday(), "bucket_width": "2d"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("bucket_width:")


def test_a_report_without_starting_at_raises_the_anthropic_sdks_bad_request_error(
    gateway: Served,
) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_TOKEN, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="starting_at: required"):
        client.get(COST, cast_to=object)


def test_a_report_with_the_ledger_off_is_404_saying_so(serve: Serve) -> None:
    served = serve(ledger={"backend": "off"})
    response = httpx.get(
        served.url + USAGE, headers=ADMIN, params={"starting_at": since_yesterday()}
    )
    assert response.status_code == 404
    assert "the ledger is off" in response.json()["error"]["message"]


def test_a_wrong_method_on_a_report_is_405(gateway: Served) -> None:
    response = httpx.post(gateway.url + COST, headers=ADMIN, json={})
    assert response.status_code == 405


def test_admin_requests_leave_no_ledger_record(gateway: Served) -> None:
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    assert len(gateway.wait_for_records(1)) == 1
    create_key(gateway.url)
    httpx.get(gateway.url + "/admin/keys", headers=ADMIN)
    httpx.get(gateway.url + USAGE, headers=ADMIN, params={"starting_at": since_yesterday()})
    httpx.get(gateway.url + "/admin/keys")  # refused
    time.sleep(0.2)  # many flush intervals
    assert len(gateway.records()) == 1


def test_admin_requests_pass_a_gateway_at_its_in_flight_limit(serve: Serve) -> None:
    served = serve(reliability={**IN_PROCESS_CONFIG["reliability"], "max_in_flight": 1})
    claude = anthropic.Anthropic(base_url=served.url, api_key=GATEWAY_KEY, max_retries=0)

    def slow_call() -> None:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "slow-first-byte:800"},
        )

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(slow_call)
        time.sleep(0.3)
        shed = httpx.post(
            served.url + "/v1/messages",
            headers={"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"},
            json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": HI},
        )
        admin = httpx.get(served.url + "/admin/keys", headers=ADMIN)
        slow.result()
    assert shed.status_code == 529  # the limit is really reached...
    assert admin.status_code == 200  # ...and the operator still gets in


# One call's record


def test_a_calls_record_is_found_by_its_request_id_without_its_text(serve: Serve) -> None:
    gateway = serve(ledger_text="full")
    client = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=20,
        messages=HI,  # type: ignore[arg-type]
    )
    request_id = raw.headers["x-tollhouse-request-id"]
    (stored,) = gateway.wait_for_records(1)

    response = httpx.get(f"{gateway.url}/admin/calls/{request_id}", headers=ADMIN)

    doc = response.json()
    assert response.status_code == 200
    assert stored.prompt_text == "user: hello"  # kept in the ledger, not in the answer
    assert "prompt_text" not in doc
    assert "answer_text" not in doc
    assert (doc["request_id"], doc["model_requested"], doc["status"]) == (
        request_id,
        "claude-haiku-4-5",
        200,
    )
    assert Decimal(doc["cost_usd"]) == stored.cost_usd
    assert response.headers["cache-control"] == "no-store"


def test_a_call_not_in_the_ledger_is_404_naming_it(gateway: Served) -> None:
    response = httpx.get(gateway.url + "/admin/calls/req_unknown", headers=ADMIN)

    assert response.status_code == 404
    assert "no call 'req_unknown' in the ledger" in response.json()["error"]["message"]


def test_calls_answer_only_get(gateway: Served) -> None:
    response = httpx.post(gateway.url + "/admin/calls/req_x", headers=ADMIN)

    assert response.status_code == 405
