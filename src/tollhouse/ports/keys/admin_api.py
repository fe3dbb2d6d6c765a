"""The admin API's key routes, as one pure handler the HTTP layer calls after checking the
admin token (`admin_token.check_admin_token`):

    POST   /admin/keys              create; the answer holds the secret, once
    GET    /admin/keys              list (`?include_revoked` is the caller's `include_revoked`)
    GET    /admin/keys/{id}
    PATCH  /admin/keys/{id}         change scopes, limits, budget, expiry, names, metadata
    POST   /admin/keys/{id}/revoke
    POST   /admin/keys/{id}/rotate  body {"grace_seconds": N} optional; the new secret, once

Refusals are raised as gateway errors for the HTTP layer to render like any other:
`BadRequest` naming the field at fault, `NotFound` (unknown id or route),
`MethodNotAllowed`. No answer ever holds a secret hash.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from tollhouse.errors import BadRequest, MethodNotAllowed, NotFound
from tollhouse.ports.keys.base import KeyStore
from tollhouse.ports.keys.key_ring import KeyRing
from tollhouse.ports.keys.record import KeyRecord, KeySpec, public_view

T = TypeVar("T")


class RotateBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    grace_seconds: float = msgspec.field(default=0.0)

    def __post_init__(self) -> None:
        if not 0 <= self.grace_seconds <= 30 * 86400:
            raise ValueError("grace_seconds must be between 0 and 2592000 (30 days)")


# Every field of KeySpec, each optional: absent leaves it as it is, null clears it.
KeyPatch = msgspec.defstruct(
    "KeyPatch",
    [
        (field.name, field.type | msgspec.UnsetType, msgspec.UNSET)
        for field in msgspec.structs.fields(KeySpec)
    ],
    kw_only=True,
    forbid_unknown_fields=True,
)


async def keys_admin(
    store: KeyStore,
    method: str,
    subpath: str,
    body: dict[str, Any] | None,
    *,
    include_revoked: bool = False,
    ring: KeyRing | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[int, dict[str, Any]]:
    """Answer one admin request on keys: (HTTP status, JSON body). `subpath` is the path
    after `/admin/keys` ("", "/key_…", "/key_…/rotate"); `body` the decoded JSON body.
    With `ring`, a key changed here is dropped from its cache at once."""
    parts = [part for part in subpath.split("/") if part]
    method = method.upper()
    if not parts:
        if method == "POST":
            created, secret = await store.create(_decode(body, KeySpec))
            return 201, {**public_view(created, clock()), "secret": secret}
        if method == "GET":
            records = await store.list(include_revoked=include_revoked)
            return 200, {"keys": [public_view(record, clock()) for record in records]}
        raise MethodNotAllowed(f"{method} /admin/keys: use GET or POST")
    key_id = parts[0]
    action = "/".join(parts[1:])
    record: KeyRecord
    if action == "":
        if method == "GET":
            record = await store.get(key_id)
        elif method == "PATCH":
            patch = _decode(body, KeyPatch)
            changes = {
                name: getattr(patch, name)
                for name in patch.__struct_fields__
                if getattr(patch, name) is not msgspec.UNSET
            }
            record = await _update(store, key_id, changes)
        else:
            raise MethodNotAllowed(f"{method} /admin/keys/{{id}}: use GET or PATCH")
    elif action in ("revoke", "rotate"):
        if method != "POST":
            raise MethodNotAllowed(f"{method} /admin/keys/{{id}}/{action}: use POST")
        if action == "revoke":
            record = await store.revoke(key_id)
        else:
            grace = _decode(body, RotateBody).grace_seconds
            record, secret = await store.rotate(key_id, grace_seconds=grace)
            if ring is not None:
                ring.forget(key_id)
            return 200, {**public_view(record, clock()), "secret": secret}
    else:
        raise NotFound(f"no admin route /admin/keys/{key_id}/{action}")
    if ring is not None and method != "GET":
        ring.forget(key_id)
    return 200, public_view(record, clock())


async def _update(store: KeyStore, key_id: str, changes: dict[str, Any]) -> KeyRecord:
    if "name" in changes and changes["name"] is None:
        raise BadRequest("name can't be null", param="name")
    try:
        return await store.update(key_id, **changes)
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid key: {error}") from None


def _decode(body: dict[str, Any] | None, kind: type[T]) -> T:
    try:
        return msgspec.convert(body or {}, kind)
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid request body: {error}") from None
