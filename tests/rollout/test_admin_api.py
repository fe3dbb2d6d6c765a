"""The admin API's rollout routes on a real gateway over loopback: status, promotion and
rollback as new config versions this gateway serves at once, refusals with the right
status, and the same library as `tollhouse rollout` (a version made here is checked and
based on the newest one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from tests.support import IN_PROCESS_CONFIG

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

TOKEN = "rollout-admin-test-token"
ROUTE = {
    "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
    "variants": {"control": {"weight": 100}, "concise": {"weight": 0}},
}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[BackgroundServer]:
    doc = {
        **IN_PROCESS_CONFIG,
        "models": {**IN_PROCESS_CONFIG["models"], "support": ROUTE},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "ledger": {
            "sqlite_path": str(tmp_path / "ledger.db"),
            "spill_path": str(tmp_path / "ledger.spill"),
        },
    }
    gateway = Gateway(parse_config(doc), document=doc, note="test start")
    with BackgroundServer(create_app(gateway, admin_token=TOKEN)) as server:
        yield server


@pytest.fixture
def admin(gateway: BackgroundServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        yield client


def weights(admin: httpx.Client) -> dict[str, float]:
    status = admin.get("/admin/rollout").json()
    (route,) = [r for r in status["routes"] if r["route"] == "support"]
    return {v["variant"]: v["weight"] for v in route["variants"]}


def test_the_routes_need_the_admin_token(gateway: BackgroundServer) -> None:
    answer = httpx.post(gateway.url + "/admin/rollout/support/concise/promote", json={"to": 50})
    assert answer.status_code == 401


def test_promote_and_roll_back_are_versions_served_at_once(
    gateway: BackgroundServer, admin: httpx.Client
) -> None:
    assert weights(admin) == {"control": 100, "concise": 0}
    promoted = admin.post(
        "/admin/rollout/support/concise/promote", json={"to": 100, "note": "all in"}
    )
    assert promoted.status_code == 201, promoted.text
    body = promoted.json()
    assert body["created"] is True
    assert body["version"]["source"] == "admin"
    assert body["version"]["note"] == "all in"
    assert body["serving"] == body["version"]["id"] == 2
    assert weights(admin) == {"control": 0, "concise": 100}

    # The next call through an official SDK is served by the promoted variant.
    with anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0) as client:
        answer = client.messages.with_raw_response.create(
            model="support", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.headers["x-tollhouse-variant"] == "concise"
    assert answer.headers["x-tollhouse-config-version"] == "2"

    same = admin.post("/admin/rollout/support/concise/promote", json={"to": 100})
    assert (same.status_code, same.json()["created"]) == (200, False)

    back = admin.post("/admin/rollout/support/concise/rollback", json={})
    assert back.status_code == 201
    assert back.json()["version"]["note"] == "roll back support/concise to 0 %"
    assert weights(admin) == {"control": 100, "concise": 0}
    history = admin.get("/admin/config/versions").json()["versions"]
    assert [v["source"] for v in history] == ["admin", "admin", "file"]


def test_status_names_the_last_change_and_what_is_served(admin: httpx.Client) -> None:
    admin.post("/admin/rollout/support/concise/promote", json={"to": 10})
    status = admin.get("/admin/rollout")
    assert status.status_code == 200
    assert status.headers["cache-control"] == "no-store"
    body = status.json()
    assert body["serving"] == 2
    (route,) = [r for r in body["routes"] if r["route"] == "support"]
    assert "promote support/concise from 0 % to 10 %" in str(route)


def test_an_eval_gate_that_did_not_pass_refuses_the_step(admin: httpx.Client) -> None:
    refused = admin.post(
        "/admin/rollout/support/concise/promote", json={"to": 10, "require_eval": "smoke"}
    )
    assert refused.status_code == 400
    assert "eval gate did not pass for support/concise" in refused.text
    assert weights(admin)["concise"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/admin/rollout/nowhere/concise/promote", {"to": 5}, 404, "no route 'nowhere'"),
        ("POST", "/admin/rollout/support/bold/promote", {"to": 5}, 404, "no variant 'bold'"),
        ("POST", "/admin/rollout/support/control/promote", {"to": 5}, 400, "is the control"),
        ("POST", "/admin/rollout/support/concise/promote", {"to": 150}, 400, "to"),
        ("POST", "/admin/rollout/support/concise/promote", {"to": 1.234}, 400, "two decimals"),
        ("POST", "/admin/rollout/support/concise/promote", {}, 400, "to"),
        ("POST", "/admin/rollout/support/concise/promote", {"to": 5, "x": 1}, 400, "x"),
        ("GET", "/admin/rollout/support/concise/promote", None, 405, "use POST"),
        ("POST", "/admin/rollout", {}, 405, "use GET"),
        ("POST", "/admin/rollout/support/concise/jump", {}, 404, "promote|rollback"),
    ],
)
def test_refusals_say_what_is_wrong(
    admin: httpx.Client,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    says: str,
) -> None:
    answer = admin.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]
    assert weights(admin) == {"control": 100, "concise": 0}
