"""An in-process LRU response store, bounded by entries and by bytes.

The embedded default: no service to run, shared by every call of the process, gone with it.
"""

from __future__ import annotations

from collections import OrderedDict

from tollhouse.ports.cache.base import CachedAnswer


class InProcessResponseStore:
    def __init__(self, max_entries: int = 10_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()

    @property
    def entries(self) -> int:
        return len(self._entries)

    async def get(self, key: str, now: float) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is None:
            return None
        if now >= answer.stale_until:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return answer

    async def put(self, key: str, answer: CachedAnswer) -> None:
        if answer.size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = answer
        self.bytes += answer.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    async def aclose(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        answer = self._entries.pop(key)
        self.bytes -= answer.size
