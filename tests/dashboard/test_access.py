"""Who may see and do what on the dashboard, over real HTTP: nothing without a session, a
read-only session sees but cannot act, an action needs the session's CSRF token and this
origin, the cookie is HttpOnly and SameSite=Strict, every answer carries a strict CSP, and
no answer holds a secret."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.dashboard.conftest import ADMIN_TOKEN, READ_TOKEN, Site

VIEWS = ("overview", "budgets", "rollouts", "lifecycle", "evals", "calls", "keys")


def signed_in(site: Site, token: str) -> tuple[httpx.Client, str]:
    answer = httpx.post(f"{site.url}/dashboard/session", json={"token": token}, timeout=30)
    assert answer.status_code == 200, answer.text
    client = httpx.Client(base_url=site.url, cookies=answer.cookies, timeout=30)
    return client, answer.json()["csrf_token"]


@pytest.mark.parametrize("view", VIEWS)
def test_no_view_answers_without_a_session(site: Site, view: str) -> None:
    answer = httpx.get(f"{site.url}/dashboard/api/{view}", timeout=30)
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"
    forged = httpx.get(
        f"{site.url}/dashboard/api/{view}",
        headers={"cookie": "tollhouse_dashboard=abc.admin.99999999999.deadbeef"},
        timeout=30,
    )
    assert forged.status_code == 401


def test_the_admin_token_in_a_header_does_not_open_the_dashboard_api(site: Site) -> None:
    answer = httpx.get(
        f"{site.url}/dashboard/api/overview",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 401


def test_a_wrong_token_is_refused_and_sets_no_cookie(site: Site) -> None:
    answer = httpx.post(f"{site.url}/dashboard/session", json={"token": "guess"}, timeout=30)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    empty = httpx.post(f"{site.url}/dashboard/session", json={}, timeout=30)
    assert (empty.status_code, empty.json()["error"]["type"]) == (400, "invalid_request_error")


def test_the_session_cookie_is_httponly_and_samesite_strict(site: Site) -> None:
    answer = httpx.post(f"{site.url}/dashboard/session", json={"token": READ_TOKEN}, timeout=30)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/dashboard" in cookie
    assert READ_TOKEN not in cookie
    assert ADMIN_TOKEN not in cookie
    assert answer.json()["role"] == "read"


def test_a_read_only_session_sees_every_view_but_cannot_act(site: Site) -> None:
    client, csrf = signed_in(site, READ_TOKEN)
    with client:
        for view in VIEWS:
            assert client.get(f"/dashboard/api/{view}").status_code == 200, view
        key_id = site.keys["beta"]["key_id"]
        actions = [
            ("/dashboard/api/rollouts/rollback", {"route": "support", "variant": "canary"}),
            (f"/dashboard/api/keys/{key_id}/revoke", None),
            (f"/dashboard/api/calls/{site.hostile_request_id}/replay", None),
        ]
        for path, body in actions:
            answer = client.post(path, json=body, headers={"x-csrf-token": csrf})
            assert answer.status_code == 403, path
            assert "read-only" in answer.json()["error"]["message"]
        assert client.get("/dashboard/api/keys").json()["keys"][0]["status"] == "active"


def test_an_action_without_the_csrf_token_or_from_another_origin_is_refused(site: Site) -> None:
    client, csrf = signed_in(site, ADMIN_TOKEN)
    key_id = site.keys["beta"]["key_id"]
    with client:
        missing = client.post(f"/dashboard/api/keys/{key_id}/revoke")
        wrong = client.post(
            f"/dashboard/api/keys/{key_id}/revoke", headers={"x-csrf-token": "x" * 64}
        )
        elsewhere = client.post(
            f"/dashboard/api/keys/{key_id}/revoke",
            headers={"x-csrf-token": csrf, "origin": "https://evil.example"},
        )
        for answer in (missing, wrong, elsewhere):
            assert answer.status_code == 403
        keys = {key["key_id"]: key for key in client.get("/dashboard/api/keys").json()["keys"]}
        assert keys[key_id]["status"] == "active"


def test_signing_out_ends_the_session(site: Site) -> None:
    client, csrf = signed_in(site, READ_TOKEN)
    with client:
        cookie = client.cookies.get("tollhouse_dashboard")
        assert (
            client.delete("/dashboard/session", headers={"x-csrf-token": csrf}).status_code == 200
        )
        again = httpx.get(
            f"{site.url}/dashboard/api/overview",
            headers={"cookie": f"tollhouse_dashboard={cookie}"},
            timeout=30,
        )
        assert again.status_code == 401


def test_every_answer_carries_a_strict_csp(site: Site) -> None:
    client, _ = signed_in(site, READ_TOKEN)
    with client:
        for path in (
            "/dashboard",
            "/dashboard/static/app.js",
            "/dashboard/api/overview",
            "/dashboard/api/nothing",
        ):
            answer = client.get(path)
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy, path
            assert "unsafe-inline" not in policy, path
            assert "frame-ancestors 'none'" in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
    page = httpx.get(f"{site.url}/dashboard", timeout=30).text
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts
    assert all(" src=" in tag for tag in scripts)
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline handler


def test_no_page_or_answer_holds_a_secret(site: Site) -> None:
    secrets = [ADMIN_TOKEN, READ_TOKEN, *(key["secret"] for key in site.keys.values())]
    client, _ = signed_in(site, ADMIN_TOKEN)
    with client:
        bodies = [client.get(f"/dashboard/api/{view}").text for view in VIEWS]
        bodies += [
            client.get(f"/dashboard/api/overview?range={r}").text for r in ("1h", "7d", "30d")
        ]
        calls = client.get("/dashboard/api/calls?limit=200").json()["calls"]
        bodies += [client.get(f"/dashboard/api/calls/{call['request_id']}").text for call in calls]
        bodies += [client.get("/dashboard").text, client.get("/dashboard/static/app.js").text]
        bodies.append(client.get("/dashboard/session").text)
    for body in bodies:
        for secret in secrets:
            assert secret not in body


def test_static_files_are_only_those_shipped(site: Site) -> None:
    for path in (
        "/dashboard/static/../sessions.py",
        "/dashboard/static/%2e%2e/http.py",
        "/dashboard/static/nothing.js",
    ):
        assert httpx.get(site.url + path, timeout=30).status_code == 404
    library = httpx.get(f"{site.url}/dashboard/static/vendor/uPlot.iife.min.js", timeout=30)
    assert library.status_code == 200
    assert "javascript" in library.headers["content-type"]
