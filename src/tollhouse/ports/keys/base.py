"""The interface of a key store: where gateway keys live, and how the request path and the
admin tools reach them.

The request path never calls a store directly: it goes through `KeyRing`, which caches.
The admin API and the CLI call the store. Errors a caller can act on are gateway errors
(`KeyNotFound` is a 404, `KeyRevoked` a 400) so the admin API renders them as they come;
`KeyStoreUnavailable` means the database can't be reached, which must never read to a
client as "bad key".
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from tollhouse.errors import BadRequest, NotFound
from tollhouse.ports.keys.record import KeyRecord, KeySpec


class KeyNotFound(NotFound):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key {key_id!r}")
        self.key_id = key_id


class KeyRevoked(BadRequest):
    """The operation makes no sense on a revoked key (rotating it, say)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} is revoked; create a new key instead")
        self.key_id = key_id


class KeyStoreUnavailable(Exception):
    """The store can't be reached now; the same operation may well succeed later."""


class KeyStore(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema to the latest migration. Every operation opens the
        store when needed; calling this is how a caller learns now that it is unreachable."""
        ...

    async def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """A new key and its plaintext secret: the only time the secret exists outside the
        caller's hands. Raises `msgspec.ValidationError` (naming the field) for a bad spec."""
        ...

    async def get(self, key_id: str) -> KeyRecord:
        """The key, revoked or not; `KeyNotFound` if there is none."""
        ...

    async def find_by_secret(self, secret: str) -> KeyRecord | None:
        """The key whose current or previous secret is `secret`, whatever its state, or
        None. Whether the key accepts that secret now is `KeyRecord.refusal`'s call."""
        ...

    async def list(self, *, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        """Every key (by default not the revoked ones), oldest first."""
        ...

    async def revoke(self, key_id: str) -> KeyRecord:
        """Revoke the key for good (idempotent: a second revoke keeps the first time)."""
        ...

    async def rotate(self, key_id: str, grace_seconds: float = 0) -> tuple[KeyRecord, str]:
        """A new secret for the same key (id, scopes, limits, budget all kept); the current
        secret keeps working `grace_seconds` more, so clients can be moved over. Raises
        `KeyRevoked` for a revoked key."""
        ...

    async def update(self, key_id: str, **changes: Any) -> KeyRecord:
        """Change fields of the key's spec (`record.UPDATABLE`, else ValueError); values are
        validated like a new spec (`msgspec.ValidationError`)."""
        ...

    async def aclose(self) -> None:
        """Close the connection; the store can't be used afterwards."""
        ...
