"""The batches and batch files this gateway process holds, in front of the batch store
(ports/batches/) every process on the same database shares: whose each is, which
provider has it, and, until its lines are recorded, each line's call.

A batch made here holds its lines' budget reservations on their calls (the admission
tickets); one this process read from the store (made by another) holds the same calls
made again, without reservations. With no store (the ledger off) a batch lives only in
the process that made it.

Bounded: at most `batches.max_open` batches made here whose lines are not recorded yet
and as many input files not yet made a batch (past them a new one is refused with 429),
and `_KNOWN` batches and files remembered, the oldest recorded ones forgotten first (the
store still has them). A batch or file nobody knows, or another key's, is 404.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from tollhouse.batches.lines import BatchLine
from tollhouse.batches.stored_lines import line_call, stored_line
from tollhouse.call import Call
from tollhouse.errors import NotFound, RateLimited, ServiceUnavailable
from tollhouse.ports.batches.base import BatchStore, BatchStoreUnavailable, StoredBatch, StoredFile
from tollhouse.providers.base import Provider
from tollhouse.types import WireFormat

_KNOWN = 10_000
# A claim to record a batch not completed in this long was made by a process that died
# while recording: another takes it over (rewriting a line already written is a no-op).
CLAIM_STALE_SECONDS = 300.0

A = TypeVar("A")


@dataclass(slots=True)
class HeldBatch:
    id: str
    client_format: WireFormat
    key_id: str | None
    provider: Provider
    # custom_id → the line's call (admission ticket on it when made here), until recorded.
    lines: dict[str, Call]
    headers: dict[str, str]  # what the upstream is sent on every request of this batch
    created: float = field(default_factory=time.time)
    recorded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    made_here: bool = True  # False: read from the store, made by another process


@dataclass(slots=True)
class HeldFile:
    id: str
    key_id: str | None
    provider: Provider
    # An input file's requests, until a batch is made of it; None for a batch's output.
    lines: list[BatchLine] | None = None


T = TypeVar("T", HeldBatch, HeldFile)


class HeldBatches:
    """`providers`: the providers of the config version served now, by name; `store` the
    batch store shared with other processes (None: none); `me` this process's name in it."""

    def __init__(
        self,
        max_open: int,
        providers: Callable[[], Mapping[str, Provider]],
        store: BatchStore | None = None,
        me: str = "",
    ) -> None:
        self.max_open = max_open
        self._providers = providers
        self.store = store
        self.me = me
        self.batches: OrderedDict[str, HeldBatch] = OrderedDict()
        self.files: OrderedDict[str, HeldFile] = OrderedDict()

    def provider(self, held: HeldBatch | HeldFile) -> Provider:
        """The provider that has `held`: by its name in the config version served now (a
        reload closes the providers it replaced), else the one it was sent to."""
        return self._providers().get(held.provider.name, held.provider)

    async def open_batches(self, limit: int) -> list[HeldBatch]:
        """The batches not recorded yet: those held here and, from the store, those any
        process made (whoever sees one ended first records it), `limit` from the store."""
        found = {batch.id: batch for batch in self.batches.values() if not batch.recorded}
        if self.store is not None:
            for batch_id in await self._stored(self.store.unrecorded(limit)):
                if batch_id not in found:
                    batch = await self._load_batch(batch_id)
                    if batch is not None and not batch.recorded:
                        found[batch_id] = batch
        return list(found.values())

    def check_room(self, what: str) -> None:
        """RateLimited when `max_open` batches (`what` "batch") or input files ("file")
        made here are held unrecorded."""
        if what == "batch":
            held = sum(1 for b in self.batches.values() if not b.recorded and b.made_here)
            things = "batches not yet ended"
        else:
            held = sum(1 for file in self.files.values() if file.lines is not None)
            things = "input files not yet made a batch"
        if held >= self.max_open:
            raise RateLimited(
                f"this gateway holds {held} {things} (batches.max_open); retry once one is "
                "done with",
                headers={"retry-after": "60"},
            )

    async def add_batch(self, batch: HeldBatch) -> None:
        _keep(self.batches, batch.id, batch, lambda b: b.recorded)
        if self.store is not None:
            stored = StoredBatch(
                id=batch.id,
                provider_batch_id=batch.id,
                client_format=batch.client_format,
                key_id=batch.key_id,
                provider=batch.provider.name,
                models=sorted({call.model for call in batch.lines.values()}),
                headers=batch.headers,
                lines=[stored_line(call) for call in batch.lines.values()],
                created_at=batch.created,
            )
            await self._stored(self.store.add_batch(stored))

    async def add_file(self, file: HeldFile) -> None:
        _keep(self.files, file.id, file, lambda f: f.lines is None)
        if self.store is not None:
            lines = None
            if file.lines is not None:
                lines = [{"custom_id": line.custom_id, "body": line.body} for line in file.lines]
            stored = StoredFile(file.id, file.key_id, file.provider.name, lines, time.time())
            await self._stored(self.store.add_file(stored))

    async def knows_file(self, file_id: str) -> bool:
        if file_id in self.files:
            return True
        return self.store is not None and await self._load_file(file_id) is not None

    async def take_file(self, file: HeldFile) -> bool:
        """Whether a batch may be made of input file `file` here: its lines not taken by
        another batch, in this process or another."""
        if file.lines is None:
            return False
        if self.store is not None and not await self._stored(self.store.take_file(file.id)):
            file.lines = None
            return False
        file.lines = None
        return True

    async def give_back_file(self, file: HeldFile, lines: list[BatchLine]) -> None:
        """The batch of `file` was not made after all: its lines wait for another."""
        file.lines = lines
        if self.store is not None:
            stored = [{"custom_id": line.custom_id, "body": line.body} for line in lines]
            await self._stored(self.store.give_back_file(file.id, stored))

    async def batch(self, batch_id: str, key_id: str | None) -> HeldBatch:
        found = self.batches.get(batch_id)
        if found is None and self.store is not None:
            found = await self._load_batch(batch_id)
        return _owned(found, key_id, f"batch {batch_id!r}")

    async def file(self, file_id: str, key_id: str | None) -> HeldFile:
        found = self.files.get(file_id)
        if found is None and self.store is not None:
            found = await self._load_file(file_id)
        return _owned(found, key_id, f"file {file_id!r}")

    async def owned(self, key_id: str | None, fmt: WireFormat) -> list[HeldBatch]:
        """`key_id`'s batches of `fmt`, newest first (`_KNOWN` at most)."""
        if self.store is None:
            return [
                batch
                for batch in reversed(self.batches.values())
                if batch.key_id == key_id and batch.client_format == fmt
            ]
        batches = []
        for batch_id in await self._stored(self.store.owned(key_id, fmt, _KNOWN)):
            batch = self.batches.get(batch_id) or await self._load_batch(batch_id)
            if batch is not None:
                batches.append(batch)
        return batches

    async def claim(self, batch: HeldBatch) -> bool:
        """Whether this process records `batch`'s lines (always, without a store)."""
        if self.store is None:
            return True
        claim = self.store.claim(batch.id, self.me, time.time(), CLAIM_STALE_SECONDS)
        return await self._stored(claim)

    async def done(self, batch: HeldBatch) -> None:
        if self.store is not None:
            await self._stored(self.store.done(batch.id, self.me, time.time()))

    async def _load_batch(self, batch_id: str) -> HeldBatch | None:
        assert self.store is not None
        stored = await self._stored(self.store.get_batch(batch_id))
        if stored is None:
            return None
        fmt: WireFormat = "anthropic" if stored.client_format == "anthropic" else "openai"
        recorded = stored.state == "recorded"
        batch = HeldBatch(
            stored.id,
            fmt,
            stored.key_id,
            self._named(stored.provider),
            {} if recorded else {
                str(line["custom_id"]): line_call(fmt, stored.id, line) for line in stored.lines
            },
            stored.headers,
            created=stored.created_at,
            recorded=recorded,
            made_here=False,
        )  # fmt: skip
        cached = self.batches.get(batch_id)  # loaded meanwhile by another request
        # Seen recorded here but not in the store: the claim that won is not complete (its
        # process may have died while recording), so it is read afresh to be taken over.
        if cached is not None and (not cached.recorded or recorded):
            return cached
        _keep(self.batches, batch.id, batch, lambda b: b.recorded)
        return batch

    async def _load_file(self, file_id: str) -> HeldFile | None:
        assert self.store is not None
        stored = await self._stored(self.store.get_file(file_id))
        if stored is None:
            return None
        lines = None
        if stored.lines is not None:
            lines = [BatchLine(str(line["custom_id"]), line["body"]) for line in stored.lines]
        file = HeldFile(stored.id, stored.key_id, self._named(stored.provider), lines)
        if file_id in self.files:
            return self.files[file_id]
        _keep(self.files, file.id, file, lambda f: f.lines is None)
        return file

    def _named(self, name: str) -> Provider:
        provider = self._providers().get(name)
        if provider is None:
            raise ServiceUnavailable(
                f"the batch's provider {name!r} is not in this gateway's config"
            )
        return provider

    async def _stored(self, operation: Awaitable[A]) -> A:
        try:
            return await operation
        except BatchStoreUnavailable as error:
            raise ServiceUnavailable(f"the batch store is unavailable: {error}") from error


def _owned(found: T | None, key_id: str | None, what: str) -> T:
    if found is None or found.key_id != key_id:
        raise NotFound(f"{what} not found")
    return found


def _keep(kept: OrderedDict[str, T], key: str, value: T, done: Callable[[T], bool]) -> None:
    kept[key] = value
    if len(kept) <= _KNOWN:
        return
    for old in list(kept):
        if len(kept) <= _KNOWN:
            break
        if done(kept[old]):
            del kept[old]
