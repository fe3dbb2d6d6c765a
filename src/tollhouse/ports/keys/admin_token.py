"""The admin token: one shared secret that guards the admin API (and the CLI over HTTP).

It comes only from the environment (`TOLLHOUSE_ADMIN_TOKEN`), never from the config file,
so it can't end up in a config version someone reads back. With no token configured the
admin API is off: every request is refused, there is no default token to guess.
"""

from __future__ import annotations

import hmac
import os

from tollhouse.errors import AuthError, PermissionDenied

ADMIN_TOKEN_ENV = "TOLLHOUSE_ADMIN_TOKEN"


def admin_token_from_env() -> str | None:
    """The configured token, or None (admin API disabled) if unset or blank."""
    token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    return token or None


def check_admin_token(presented: str | None, expected: str | None) -> None:
    """Pass if `presented` is the admin token `expected`. `AuthError` (401) if no token is
    configured or none was presented, `PermissionDenied` (403) if it is wrong. The
    comparison takes the same time wherever the two differ, so timing can't reveal a
    prefix of the token."""
    if not expected:
        raise AuthError(f"the admin API is disabled: set {ADMIN_TOKEN_ENV} to enable it")
    if not presented:
        raise AuthError("missing admin token: send it as `Authorization: Bearer <token>`")
    if not hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    ):
        raise PermissionDenied("invalid admin token")
