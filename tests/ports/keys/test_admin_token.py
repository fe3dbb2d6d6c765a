"""The admin token guards the admin API: 401 when missing or not configured, 403 when wrong."""

from __future__ import annotations

import pytest

from tollhouse.errors import AuthError, PermissionDenied
from tollhouse.ports.keys.admin_token import admin_token_from_env, check_admin_token


def test_the_right_token_passes() -> None:
    check_admin_token("s3cret-admin", "s3cret-admin")


def test_a_missing_token_is_refused_with_401() -> None:
    with pytest.raises(AuthError, match="missing admin token") as refused:
        check_admin_token(None, "s3cret-admin")
    assert refused.value.status == 401


def test_a_wrong_token_is_refused_with_403_without_echoing_either() -> None:
    with pytest.raises(PermissionDenied) as refused:
        check_admin_token("guess", "s3cret-admin")
    assert refused.value.status == 403
    assert "guess" not in refused.value.message
    assert "s3cret" not in refused.value.message


def test_with_no_token_configured_the_admin_api_is_disabled() -> None:
    with pytest.raises(AuthError, match=r"admin API is disabled.*TOLLHOUSE_ADMIN_TOKEN"):
        check_admin_token("anything", None)


def test_the_token_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLHOUSE_ADMIN_TOKEN", "from-env")
    assert admin_token_from_env() == "from-env"


def test_a_blank_environment_token_means_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLHOUSE_ADMIN_TOKEN", "  ")
    assert admin_token_from_env() is None
