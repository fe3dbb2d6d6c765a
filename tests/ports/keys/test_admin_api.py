"""The admin API's key routes, through the pure handler the HTTP layer calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tollhouse.errors import AuthError, BadRequest, MethodNotAllowed, NotFound
from tollhouse.ports.keys.admin_api import keys_admin
from tollhouse.ports.keys.key_ring import KeyRing
from tollhouse.ports.keys.sqlite import SQLiteKeyStore

T = TypeVar("T")
Admin = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


def run(tmp_path: Path, scenario: Callable[[Admin, KeyRing], Awaitable[T]]) -> T:
    async def main() -> T:
        store = SQLiteKeyStore(tmp_path / "keys.db")
        ring = KeyRing(store)

        async def admin(
            method: str, subpath: str = "", body: dict[str, Any] | None = None, **kw: Any
        ) -> tuple[int, dict[str, Any]]:
            return await keys_admin(store, method, subpath, body, ring=ring, **kw)

        try:
            return await scenario(admin, ring)
        finally:
            await store.aclose()

    return asyncio.run(main())


CREATE = {
    "name": "checkout",
    "team": "payments",
    "allowed_models": ["claude-*"],
    "limits": {"rpm": 60},
    "budget": {"daily_usd": "12.50", "monthly_usd": 100},
    "expires_at": "2030-01-01T00:00:00Z",
}


def test_create_answers_201_with_the_secret_once_and_never_a_hash(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> tuple[int, dict[str, Any], dict[str, Any]]:
        status, created = await admin("POST", "", CREATE)
        _, shown = await admin("GET", f"/{created['key_id']}")
        return status, created, shown

    status, created, shown = run(tmp_path, scenario)
    assert status == 201
    assert created["secret"].startswith(created["prefix"])
    assert created["budget"] == {"daily_usd": "12.50", "monthly_usd": "100", "mode": "clamp"}
    assert created["status"] == "active"
    assert "secret" not in shown
    for view in (created, shown):
        assert not any("hash" in field for field in view)


def test_the_created_secret_authenticates(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> bool:
        _, created = await admin("POST", "", CREATE)
        return bool((await ring.authenticate(created["secret"])).key_id == created["key_id"])

    assert run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "k", "limits": {"rpm": 0}}, "$.limits.rpm"),
        ({"name": "k", "budget": {"daily_usd": "-1"}}, "$.budget"),
        ({"name": "k", "expires_at": "2030-01-01T00:00:00"}, "$.expires_at"),
        ({"name": "k", "colour": "red"}, "colour"),
    ],
)
def test_create_with_an_invalid_body_is_a_bad_request_naming_the_field(
    tmp_path: Path, body: dict[str, Any], field: str
) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        await admin("POST", "", body)

    with pytest.raises(BadRequest) as refused:
        run(tmp_path, scenario)
    assert field in refused.value.message


def test_list_shows_active_keys_and_revoked_ones_on_request(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> tuple[int, int]:
        await admin("POST", "", {"name": "kept"})
        _, gone = await admin("POST", "", {"name": "gone"})
        await admin("POST", f"/{gone['key_id']}/revoke")
        _, active = await admin("GET")
        _, every = await admin("GET", include_revoked=True)
        return len(active["keys"]), len(every["keys"])

    assert run(tmp_path, scenario) == (1, 2)


def test_patch_changes_only_the_fields_given_and_null_clears(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> dict[str, Any]:
        _, created = await admin("POST", "", CREATE)
        status, patched = await admin(
            "PATCH", f"/{created['key_id']}", {"limits": {"rpm": 5}, "expires_at": None}
        )
        assert status == 200
        return patched

    patched = run(tmp_path, scenario)
    assert patched["limits"]["rpm"] == 5
    assert patched["expires_at"] is None
    assert patched["team"] == "payments"
    assert patched["allowed_models"] == ["claude-*"]


def test_patch_with_an_invalid_value_is_a_bad_request_naming_the_field(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        _, created = await admin("POST", "", CREATE)
        await admin("PATCH", f"/{created['key_id']}", {"caps": {"max_tokens_mode": "trim"}})

    with pytest.raises(BadRequest, match=r"\$\.caps\.max_tokens_mode"):
        run(tmp_path, scenario)


def test_patch_setting_the_name_to_null_is_a_bad_request(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        _, created = await admin("POST", "", CREATE)
        await admin("PATCH", f"/{created['key_id']}", {"name": None})

    with pytest.raises(BadRequest, match="name"):
        run(tmp_path, scenario)


def test_revoke_through_the_api_takes_effect_in_the_ring_at_once(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        _, created = await admin("POST", "", CREATE)
        await ring.authenticate(created["secret"])
        status, revoked = await admin("POST", f"/{created['key_id']}/revoke")
        assert (status, revoked["status"]) == (200, "revoked")
        await ring.authenticate(created["secret"])

    with pytest.raises(AuthError, match="revoked"):
        run(tmp_path, scenario)


def test_rotate_answers_the_new_secret_and_keeps_the_old_for_the_grace(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> tuple[str, str]:
        _, created = await admin("POST", "", CREATE)
        status, rotated = await admin(
            "POST", f"/{created['key_id']}/rotate", {"grace_seconds": 600}
        )
        assert status == 200
        assert rotated["secret"] != created["secret"]
        old = await ring.authenticate(created["secret"])
        new = await ring.authenticate(rotated["secret"])
        return old.key_id, new.key_id

    old, new = run(tmp_path, scenario)
    assert old == new


def test_rotate_with_a_negative_grace_is_a_bad_request(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        _, created = await admin("POST", "", CREATE)
        await admin("POST", f"/{created['key_id']}/rotate", {"grace_seconds": -1})

    with pytest.raises(BadRequest, match="grace_seconds"):
        run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("method", "subpath"),
    [
        ("GET", "/key_000000000000"),
        ("PATCH", "/key_000000000000"),
        ("POST", "/key_000000000000/revoke"),
        ("POST", "/key_000000000000/rotate"),
    ],
)
def test_an_unknown_key_id_is_404(tmp_path: Path, method: str, subpath: str) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        await admin(method, subpath, {})

    with pytest.raises(NotFound) as refused:
        run(tmp_path, scenario)
    assert refused.value.status == 404


def test_an_unknown_action_is_404(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        await admin("POST", "/key_000000000000/explode")

    with pytest.raises(NotFound):
        run(tmp_path, scenario)


def test_a_wrong_method_is_405(tmp_path: Path) -> None:
    async def scenario(admin: Admin, ring: KeyRing) -> None:
        await admin("DELETE", "/key_000000000000")

    with pytest.raises(MethodNotAllowed):
        run(tmp_path, scenario)
