"""Making config versions: apply a document, roll back, set a flag (see the package docs).

`ConfigChanges` is the library the CLI, the admin API and the gateway itself use, so the
three refuse the same documents with the same messages. A document is stored only when
it loads (`parse_config`: shape, names, flags, secret references written as references)
and its parts build here (`build_parts`: every secret reference resolves, URLs parse,
simulator options are valid), the checks `tollhouse serve` and `check-config` make. A
gateway on the store still loads each new version itself before serving it, and refuses
it, serving on, when it fails there (config_versions/watch.py).

Some settings are read when a gateway starts and are not swapped by a reload:
`START_ONLY` lists them. A version that changes them is stored and served all the same;
the answer (`Applied.restart_needed`) names the ones that take effect at the next start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tollhouse.config import GatewayConfig, parse_config
from tollhouse.config.document import Document, as_document, diff
from tollhouse.config.flags import FlagValue, defined_flags
from tollhouse.errors import BadRequest, NotFound
from tollhouse.gateway_parts import build_parts
from tollhouse.ports.config.base import (
    ConfigStore,
    ConfigVersion,
    VersionConflict,
    VersionSource,
)

# Settings a running gateway reads once, at start (servers, stores, writers and limits of
# the HTTP edge); everything else is swapped by a reload.
START_ONLY: tuple[str, ...] = (
    "server",
    "ledger",
    "logging",
    "keys",
    "counters",
    "alerts",
    "response_cache",
    "batches",
    "config_store",
    "dashboard",
    "tracing",
    "limits.max_body_reads_per_key",
    "limits.max_partial_body_bytes",
    "reliability.max_in_flight",
)

_EDIT_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Applied:
    """What a change did: `version` is the newest version afterwards (the new one, or the
    one that already had this content when `created` is False); `restart_needed` names
    the `START_ONLY` settings it changes, which running gateways take at their next start."""

    version: ConfigVersion
    created: bool
    restart_needed: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version.summary(),
            "created": self.created,
            "restart_needed": list(self.restart_needed),
        }


def check_buildable(config: GatewayConfig) -> None:
    """Raise `ConfigError` unless every part `config` names builds here (nothing opened)."""
    build_parts(config)


class ConfigChanges:
    """Versions of the config on `store`. `check` is what a document must pass beyond
    loading (by default `check_buildable`)."""

    def __init__(
        self,
        store: ConfigStore,
        *,
        check: Callable[[GatewayConfig], None] = check_buildable,
    ) -> None:
        self.store = store
        self._check = check

    async def apply(
        self,
        document: Document,
        *,
        source: VersionSource,
        note: str = "",
        restores: int | None = None,
        expect_latest: int | None = None,
    ) -> Applied:
        """Store `document` as the newest version, unless the newest already has its
        content. Raises `ConfigError` (the loader's message, naming the key) when it does
        not load or build, `VersionConflict` when `expect_latest` is no longer the newest."""
        document = as_document(document, source="the document")
        config = self.validate(document, f"{source} config")
        latest = await self.store.latest()
        version, created = await self.store.add(
            document,
            source=source,
            note=note,
            restores=restores,
            unless_latest_has_same_content=True,
            expect_latest=expect_latest,
        )
        restart: tuple[str, ...] = ()
        if created and latest is not None:
            restart = restart_needed(parse_config(latest.document, source="old"), config)
        return Applied(version, created, restart)

    def validate(self, document: Document, source: str) -> GatewayConfig:
        """The config `document` is; `ConfigError` naming the key when it is refused."""
        config = parse_config(document, source=source)
        self._check(config)
        return config

    async def rollback(self, to: int | None = None, *, note: str = "") -> Applied:
        """A new version with the document of version `to`, or (None) of the newest
        version before the current one whose content differs from it."""
        newest = await self.store.latest()
        if newest is None:
            raise NotFound("there is no config version to roll back from")
        target = await self._rollback_target(newest, to)
        return await self.apply(
            target.document,
            source="rollback",
            note=note or f"rollback to version {target.id}",
            restores=target.id,
            expect_latest=newest.id,
        )

    async def newest(self) -> ConfigVersion:
        """The newest version; `NotFound` before any was stored."""
        version = await self.store.latest()
        if version is None:
            raise NotFound("there is no config version yet; start a gateway or apply a config")
        return version

    async def edit(
        self,
        change: Callable[[ConfigVersion], Document],
        *,
        source: VersionSource,
        note: str,
    ) -> Applied:
        """A new version: `change` applied to the newest one's document. When another
        change lands first, `change` runs again on top of it (compare-and-add), so two
        operators, or an operator and a guardrail rollback, never overwrite each other.
        `change` raises (`BadRequest`, `NotFound`) to refuse."""
        for _ in range(_EDIT_RETRIES):
            newest = await self.newest()
            try:
                return await self.apply(
                    change(newest), source=source, note=note, expect_latest=newest.id
                )
            except VersionConflict:
                continue  # another change came first: make this one on top of it
        raise VersionConflict(None, await self.store.latest_id())

    async def set_flag(
        self, name: str, value: FlagValue, *, source: VersionSource, note: str = ""
    ) -> Applied:
        """A new version: the newest one with flag `name` set to `value` (of the kind the
        flag already has). `BadRequest` for an unknown flag or a value of another kind."""

        def with_flag(newest: ConfigVersion) -> Document:
            flags = defined_flags(newest.document, f"config version {newest.id}")
            if name not in flags:
                known = ", ".join(sorted(flags)) or "(none)"
                raise BadRequest(
                    f"unknown flag {name!r}; defined flags: {known} (a new flag is added to "
                    "the config's `flags:` with `tollhouse config apply`)",
                    param="name",
                )
            _check_kind(name, flags[name], value)
            return {**newest.document, "flags": {**flags, name: value}}

        return await self.edit(with_flag, source=source, note=note or f"flag {name} = {value!r}")

    async def flags(self) -> tuple[int | None, dict[str, FlagValue]]:
        """The newest version's id and its flags (none before any version)."""
        newest = await self.store.latest()
        if newest is None:
            return None, {}
        return newest.id, defined_flags(newest.document, f"config version {newest.id}")

    async def diff(self, old: int, new: int | None = None) -> str:
        """A unified diff from version `old` to `new` (default: the newest)."""
        before = await self.store.get(old)
        after = await self.store.get(new) if new is not None else await self.store.latest()
        assert after is not None  # `old` exists, so some version does
        return diff(
            before.document,
            after.document,
            old_name=f"version {before.id}",
            new_name=f"version {after.id}",
        )

    async def _rollback_target(self, newest: ConfigVersion, to: int | None) -> ConfigVersion:
        if to is not None:
            return await self.store.get(to)
        before = newest.id
        while True:
            page = await self.store.history(limit=50, before=before)
            if not page:
                raise BadRequest(f"no version before {newest.id} has other content to roll back to")
            for version in page:
                if version.content_hash != newest.content_hash:
                    return version
            before = page[-1].id


def restart_needed(old: GatewayConfig, new: GatewayConfig) -> tuple[str, ...]:
    """The `START_ONLY` settings whose values differ between `old` and `new`."""
    changed = []
    for setting in START_ONLY:
        a: Any = old
        b: Any = new
        for part in setting.split("."):
            a, b = getattr(a, part), getattr(b, part)
        if a != b:
            changed.append(setting)
    return tuple(changed)


def _check_kind(name: str, current: FlagValue, value: FlagValue) -> None:
    def kind(v: FlagValue) -> str:
        if isinstance(v, bool):
            return "boolean"
        return "number" if isinstance(v, int | float) else "string"

    if kind(current) != kind(value):
        raise BadRequest(
            f"flag {name} is a {kind(current)}; got a {kind(value)} ({value!r})", param="value"
        )


def parse_flag_value(text: str, current: FlagValue) -> FlagValue:
    """`text` (as typed on a command line) as a value of `current`'s kind: `true`/`false`
    for a boolean, a number for a number, the text itself for a string."""
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise BadRequest(f"expected true or false, got {text!r}", param="value")
    if isinstance(current, int | float):
        try:
            number = float(text)
        except ValueError:
            raise BadRequest(f"expected a number, got {text!r}", param="value") from None
        return int(number) if number.is_integer() and "." not in text else number
    return text
