"""The admin API's config routes on a real gateway over loopback: token first, refusals
in the wire format with the right status, and every answer naming the version served.

One gateway serves the whole module (each server started in a test process holds a few
descriptors until the process ends), so each test states what it expects relative to
the version served when it starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support import IN_PROCESS_CONFIG

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

TOKEN = "config-admin-test-token"


def document(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "flags": {"cautious": False},
        "ledger": {"backend": "off"},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        **extra,
    }


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    doc = document(tmp_path_factory.mktemp("admin-config"))
    gateway = Gateway(parse_config(doc), document=doc, note="test start")
    with (
        BackgroundServer(create_app(gateway, admin_token=TOKEN)) as server,
        httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


def test_the_routes_need_the_admin_token(admin: httpx.Client) -> None:
    answer = httpx.get(str(admin.base_url) + "/admin/config/versions", timeout=30)
    assert answer.status_code == 401


def serving(admin: httpx.Client) -> int:
    version: int = admin.get("/readyz").json()["config_version"]
    return version


def test_history_names_the_start_version_and_what_is_served(admin: httpx.Client) -> None:
    answer = admin.get("/admin/config/versions", params={"limit": 1000})
    assert answer.status_code == 200
    body = answer.json()
    assert body["serving"] == body["versions"][0]["id"]
    oldest = body["versions"][-1]
    assert (oldest["id"], oldest["source"], oldest["note"]) == (1, "file", "test start")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-tollhouse-config-version"] == str(body["serving"])


def test_apply_show_diff_flags_and_rollback(admin: httpx.Client) -> None:
    start = serving(admin)
    base = admin.get("/admin/config/versions/1").json()["document"]
    changed = {**base, "timeouts": {"total": 42}}
    applied = admin.post("/admin/config/versions", json={"document": changed, "note": "n"})
    assert applied.status_code == 201
    assert applied.json()["serving"] == start + 1
    again = admin.post("/admin/config/versions", json={"document": changed})
    assert (again.status_code, again.json()["created"]) == (200, False)

    shown = admin.get(f"/admin/config/versions/{start + 1}").json()
    assert shown["document"]["timeouts"] == {"total": 42}
    diff = admin.get("/admin/config/diff", params={"from": 1}).json()["diff"]
    assert "+  total: 42" in diff

    flag = admin.put("/admin/config/flags/cautious", json={"value": True, "note": "careful"})
    assert flag.status_code == 201
    assert admin.get("/admin/config/flags").json() == {
        "version": start + 2,
        "flags": {"cautious": True},
        "serving": start + 2,
    }
    back = admin.post("/admin/config/rollback", json={"to": 1})
    assert back.status_code == 201
    assert back.json()["version"]["restores"] == 1
    assert back.json()["serving"] == start + 3


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/admin/config/versions/9", None, 404, "no config version 9"),
        ("GET", "/admin/config/versions/x", None, 404, "versions are numbered from 1"),
        ("GET", "/admin/config/diff", None, 400, "from: the version to compare from"),
        ("DELETE", "/admin/config/versions", None, 405, "use GET or POST"),
        ("PUT", "/admin/config/flags/nope", {"value": 1}, 400, "unknown flag 'nope'"),
        ("PUT", "/admin/config/flags/cautious", {"value": "x"}, 400, "is a boolean"),
        ("POST", "/admin/config/versions", {"note": "x"}, 400, "missing required field"),
        (
            "POST",
            "/admin/config/versions",
            {"document": {"models": {"m": {"deployments": [{"provider": "p", "model": "x"}]}}}},
            400,
            "$.models.m.deployments[0].provider: unknown provider 'p'",
        ),
    ],
)
def test_refusals_say_why_with_the_right_status(
    admin: httpx.Client,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    message: str,
) -> None:
    before = serving(admin)
    answer = admin.request(method, path, json=body)
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"]
    assert serving(admin) == before


def test_a_gateway_without_versions_says_how_to_have_them(tmp_path: Path) -> None:
    gateway = Gateway(parse_config(document(tmp_path)))
    with BackgroundServer(create_app(gateway, admin_token=TOKEN)) as server:
        answer = httpx.get(
            server.url + "/admin/config/versions",
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    assert answer.status_code == 404
    assert "tollhouse serve -c FILE" in answer.json()["error"]["message"]
