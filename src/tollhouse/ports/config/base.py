"""The interface of a config store, and the version it keeps.

A version is immutable once stored. Ids are whole numbers from 1, each larger than every
id before it (two writers can't take the same id: each store assigns it under a lock),
so "newer" is "larger id", on every process sharing the store.

`document` is the configuration as an operator wrote it (a JSON object: the YAML/TOML file
read to plain values, or what the admin API was sent), including its `flags:` and every
`flag:NAME` reference unresolved. Secrets in it are references (`env:NAME`, `file:PATH`):
the loader refuses an inline secret before anything is stored, and nothing here resolves
one. `content_hash` is the SHA-256 of its canonical JSON (`config.document.content_hash`):
two versions with the same content have the same hash, whatever their key order.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from tollhouse.errors import BadRequest, NotFound

VersionSource = Literal["file", "admin", "cli", "rollback", "auto"]
"""Who made a version: `file` (recorded by `tollhouse serve` at start), `admin` (the admin
API), `cli` (`tollhouse config apply` / `flags set`), `rollback`, `auto` (the gateway
itself, e.g. a guardrail setting a failing canary back)."""

SOURCES: tuple[VersionSource, ...] = ("file", "admin", "cli", "rollback", "auto")


class ConfigVersion(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    created_at: datetime  # UTC, aware
    source: VersionSource
    note: str  # the author's note ("" when none was given)
    content_hash: str  # hex SHA-256 of the canonical document
    document: dict[str, Any]
    restores: int | None = None  # a rollback: the version whose document it brings back

    def summary(self) -> dict[str, Any]:
        """The version without its document, as history lists it."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "source": self.source,
            "note": self.note,
            "content_hash": self.content_hash,
            "restores": self.restores,
        }


class VersionNotFound(NotFound):
    def __init__(self, version_id: int) -> None:
        super().__init__(f"no config version {version_id}")
        self.version_id = version_id


class VersionConflict(BadRequest):
    """A change based on one version met a newer one (another change got there first):
    nothing was stored; read the newest version and try again."""

    status = 409

    def __init__(self, expected: int | None, latest: int | None) -> None:
        super().__init__(
            f"the config changed meanwhile: this change was based on version {expected}, "
            f"the newest is {latest}; nothing was stored, try again"
        )
        self.latest = latest


class ConfigStoreUnavailable(Exception):
    """The store can't be reached now; the same operation may well succeed later."""


class ConfigStore(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema to the latest migration (every operation opens the
        store when needed; this is how a caller learns now that it is unreachable)."""
        ...

    async def add(
        self,
        document: dict[str, Any],
        *,
        source: VersionSource,
        note: str = "",
        restores: int | None = None,
        unless_latest_has_same_content: bool = False,
        expect_latest: int | None = None,
    ) -> tuple[ConfigVersion, bool]:
        """Store `document` as the newest version: (that version, True). With
        `unless_latest_has_same_content`, when the newest version already has the same
        content hash nothing is stored: (that newest version, False). With
        `expect_latest`, `VersionConflict` (409) unless the newest version's id is that
        one (a read-modify-write such as a flag change loses no one else's change). The
        checks and the write are one transaction, so gateways starting together record a
        file once."""
        ...

    async def get(self, version_id: int) -> ConfigVersion:
        """The version; `VersionNotFound` (404) if there is none."""
        ...

    async def latest(self) -> ConfigVersion | None:
        """The newest version, or None when nothing was stored yet."""
        ...

    async def latest_id(self) -> int | None:
        """The newest version's id (one indexed read: what gateways poll)."""
        ...

    async def history(
        self, *, limit: int = 50, before: int | None = None
    ) -> builtins.list[ConfigVersion]:
        """Up to `limit` versions, newest first, those with an id below `before` if given."""
        ...

    async def aclose(self) -> None:
        """Close the connection; the store can't be used afterwards."""
        ...
