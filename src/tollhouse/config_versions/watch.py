"""One gateway following the newest config version of its store (see the package docs).

Bound: a version stored on the store is served by every gateway following it within
`config_store.poll_seconds` (2 s by default) plus the time to build its snapshot
(milliseconds; more when it names new upstreams whose secrets are files). The gateway that
applied it (through its admin API) swaps at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from tollhouse.config import ConfigError, parse_config
from tollhouse.gateway_snapshot import next_snapshot
from tollhouse.ports.config.base import ConfigStore, ConfigStoreUnavailable, ConfigVersion

if TYPE_CHECKING:
    from tollhouse.gateway import Gateway

log = logging.getLogger("tollhouse.config")


class VersionWatch:
    """Keeps `gateway` on the newest version of `store`. `document` is the config the
    gateway was built from, as written (recorded at start with `source` and `note`)."""

    def __init__(
        self,
        gateway: Gateway,
        store: ConfigStore,
        document: dict[str, Any],
        *,
        poll_seconds: float,
        note: str = "",
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.poll_seconds = poll_seconds
        self.problem: str | None = None  # what /readyz reports, None when all is well
        self._document = document
        self._note = note
        self._recorded = False
        self._refused: int | None = None  # the version that failed to load, not retried
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Record the start document and follow the store, on the serving loop."""
        self._task = asyncio.ensure_future(self._follow())

    async def check_now(self) -> ConfigVersion | None:
        """Serve the newest version now if it is newer than the one served; the newest
        version, or None when the store is unreachable (`problem` says why)."""
        async with self._lock:
            try:
                if not self._recorded:
                    await self._record_start()
                return await self._catch_up()
            except ConfigStoreUnavailable as error:
                self.problem = f"the config store is unavailable: {error}"
                log.warning("%s; serving config version %s", self.problem, self._serving)
                return None

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.store.aclose()

    @property
    def _serving(self) -> int | None:
        return self.gateway.config_version

    async def _follow(self) -> None:
        while True:
            try:
                await self.check_now()
            except Exception:  # the watch must outlive any one failure
                log.exception("checking for a newer config version failed")
            await asyncio.sleep(self.poll_seconds)

    async def _record_start(self) -> None:
        version, created = await self.store.add(
            self._document, source="file", note=self._note, unless_latest_has_same_content=True
        )
        self._recorded = True
        if created:
            log.info("config recorded as version %d (%s)", version.id, version.note)
        # Stored now or already the newest, `version` has the content the gateway was
        # built from: the snapshot serving is that version.
        self.gateway.snapshot = dataclasses.replace(self.gateway.snapshot, version=version.id)

    async def _catch_up(self) -> ConfigVersion | None:
        newest = await self.store.latest_id()
        if newest is None:
            return None
        if newest == self._serving or newest == self._refused:
            if newest == self._serving:
                self.problem = None
            return await self.store.get(newest)
        version = await self.store.get(newest)
        try:
            config = parse_config(version.document, source=f"config version {version.id}")
            following = next_snapshot(self.gateway.snapshot, config, version.id)
        except ConfigError as error:
            self._refused = version.id
            self.problem = f"config version {version.id} refused here: {error}"
            log.error("%s; still serving version %s", self.problem, self._serving)
            return version
        before = self._serving
        self.gateway.swap(following)
        self.problem = None
        log.info("serving config version %d (was %s)", version.id, before)
        return version
