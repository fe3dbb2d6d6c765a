"""The batches and batch files this gateway process holds: whose each is, which provider
has it, and, until its lines are recorded, each line's call with its budget reservation.

Bounded: at most `batches.max_open` batches whose lines are not recorded yet and as many
input files not yet made a batch (past them a new one is refused with 429), and
`_KNOWN` ended batches and files remembered for their owners to read, the oldest
forgotten first. A batch or file this process doesn't know, or another key's, is 404.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from tollhouse.batches.lines import BatchLine
from tollhouse.call import Call
from tollhouse.errors import NotFound, RateLimited
from tollhouse.providers.base import Provider
from tollhouse.types import WireFormat

_KNOWN = 10_000


@dataclass(slots=True)
class HeldBatch:
    id: str
    client_format: WireFormat
    key_id: str | None
    provider: Provider
    # custom_id → the line's call (admission ticket on it), until the line is recorded.
    lines: dict[str, Call]
    headers: dict[str, str]  # what the upstream is sent on every request of this batch
    created: float = field(default_factory=time.time)
    recorded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class HeldFile:
    id: str
    key_id: str | None
    provider: Provider
    # An input file's requests, until a batch is made of it; None for a batch's output.
    lines: list[BatchLine] | None = None


T = TypeVar("T", HeldBatch, HeldFile)


class HeldBatches:
    """`providers`: the providers of the config version served now, by name."""

    def __init__(self, max_open: int, providers: Callable[[], Mapping[str, Provider]]) -> None:
        self.max_open = max_open
        self._providers = providers
        self.batches: OrderedDict[str, HeldBatch] = OrderedDict()
        self.files: OrderedDict[str, HeldFile] = OrderedDict()

    def provider(self, held: HeldBatch | HeldFile) -> Provider:
        """The provider that has `held`: by its name in the config version served now (a
        reload closes the providers it replaced), else the one it was sent to."""
        return self._providers().get(held.provider.name, held.provider)

    def open_batches(self) -> list[HeldBatch]:
        return [batch for batch in self.batches.values() if not batch.recorded]

    def check_room(self, what: str) -> None:
        """RateLimited when `max_open` batches (`what` "batch") or input files ("file")
        are held unrecorded."""
        if what == "batch":
            held, things = len(self.open_batches()), "batches not yet ended"
        else:
            held = sum(1 for file in self.files.values() if file.lines is not None)
            things = "input files not yet made a batch"
        if held >= self.max_open:
            raise RateLimited(
                f"this gateway holds {held} {things} (batches.max_open); retry once one is "
                "done with",
                headers={"retry-after": "60"},
            )

    def add_batch(self, batch: HeldBatch) -> None:
        _keep(self.batches, batch.id, batch, lambda b: b.recorded)

    def add_file(self, file: HeldFile) -> None:
        _keep(self.files, file.id, file, lambda f: f.lines is None)

    def batch(self, batch_id: str, key_id: str | None) -> HeldBatch:
        return _owned(self.batches.get(batch_id), key_id, f"batch {batch_id!r}")

    def file(self, file_id: str, key_id: str | None) -> HeldFile:
        return _owned(self.files.get(file_id), key_id, f"file {file_id!r}")

    def owned(self, key_id: str | None, fmt: WireFormat) -> list[HeldBatch]:
        """`key_id`'s batches of `fmt`, newest first."""
        return [
            batch
            for batch in reversed(self.batches.values())
            if batch.key_id == key_id and batch.client_format == fmt
        ]


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
