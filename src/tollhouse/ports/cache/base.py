"""The interface of a response store. A stored answer is fresh until `fresh_until` and may
still be served, marked stale, until `stale_until` (graceful degradation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: bytes  # the whole answer in the client's wire format
    stored_at: float
    fresh_until: float
    stale_until: float


class ResponseStore(Protocol):
    def __len__(self) -> int: ...

    def get(self, key: str, now: float) -> CachedAnswer | None:
        """The answer stored under `key` if it is not past `stale_until`."""
        ...

    def put(self, key: str, answer: CachedAnswer) -> None: ...
