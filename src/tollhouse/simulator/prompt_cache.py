"""Prompt-cache emulation, so usage carries cache reads and writes like the providers'.

Anthropic (explicit): the prompt is read in the API's cache order, tools, then system
blocks, then messages; each block with a `cache_control` marker ends a cacheable prefix.
The longest marked prefix seen before within its TTL (per model) is a read
(`cache_read_input_tokens`, and its TTL is refreshed); every later marked prefix is written
(`cache_creation_input_tokens`, split into `ephemeral_5m`/`ephemeral_1h` by the TTL of the
marker that ends each segment). A marker's TTL is `cache_ttl_seconds` when it has no `ttl`
or `"5m"`, 3600 s for `"1h"`. The marker itself is not part of a prefix's identity. A
marker ending a prefix shorter than the model's minimum cacheable length (the catalog's
`prompt_cache.min_tokens`, 1,024 for a model it lacks) is neither written nor read, as the
API ignores it.

OpenAI (automatic): tools, then each message, end a prefix; prefixes of at least 1,024
tokens are remembered for `cache_ttl_seconds`, and the longest one seen before is reported as
`cached_tokens`, rounded down to a multiple of 128 as the API does.

Token counts of a prefix follow `tollhouse.tokens.estimate`, so the cached part never exceeds
the request's input tokens. Memory is bounded (least recently used entries go first); the
store is shared by all calls and guarded by a lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.catalog.models import load_catalog
from tollhouse.tokens.estimate import (
    MESSAGE_OVERHEAD,
    TOOL_OVERHEAD,
    anthropic_prompt_prefix,
    content_tokens,
    text_tokens,
)

OPENAI_MIN_PREFIX_TOKENS = 1024
OPENAI_CACHE_GRANULE = 128
ONE_HOUR_S = 3600.0
_MAX_ENTRIES = 100_000
_OPENAI_PREFIXES_KEPT = 64
# The floor of a model the catalog has none for: the smallest any Anthropic model has, so
# a test on a made-up model name still caches what reaches it.
DEFAULT_MIN_TOKENS = 1024


def catalog_floor(model: str) -> int:
    """The catalog's minimum cacheable prefix of `model`, else `DEFAULT_MIN_TOKENS`."""
    entry = load_catalog().get(model)
    if entry is None or entry.prompt_cache is None:
        return DEFAULT_MIN_TOKENS
    return entry.prompt_cache.min_tokens


@dataclass(frozen=True, slots=True)
class AnthropicCacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0


@dataclass(frozen=True, slots=True)
class _Prefix:
    key: bytes
    tokens: int
    ttl_s: float
    one_hour: bool = False


class PromptCache:
    def __init__(
        self,
        ttl_s: float,
        max_entries: int = _MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        min_tokens: Callable[[str], int] | None = None,
    ) -> None:
        """`min_tokens(model)`: the shortest prefix an Anthropic model caches (default: the
        catalog's `prompt_cache.min_tokens`, see `catalog_floor`)."""
        self._ttl_s = ttl_s
        self._min_tokens = min_tokens or catalog_floor
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def anthropic_usage(self, model: str, body: dict[str, Any]) -> AnthropicCacheUsage:
        """Cache reads and writes of a validated Messages request."""
        prefixes = list(self._anthropic_prefixes(model, body))
        if not prefixes:
            return AnthropicCacheUsage()
        with self._lock:
            hit = self._longest_hit(prefixes)
            read = prefixes[hit].tokens if hit >= 0 else 0
            write_5m = write_1h = 0
            previous = read
            for prefix in prefixes[hit + 1 :]:
                segment = max(0, prefix.tokens - previous)
                previous = max(previous, prefix.tokens)
                if prefix.one_hour:
                    write_1h += segment
                else:
                    write_5m += segment
                self._store(prefix)
        return AnthropicCacheUsage(read, write_5m, write_1h)

    def openai_cached_tokens(self, model: str, body: dict[str, Any]) -> int:
        """Cached prompt tokens of a validated Chat Completions request."""
        prefixes = [
            p for p in self._openai_prefixes(model, body) if p.tokens >= OPENAI_MIN_PREFIX_TOKENS
        ][-_OPENAI_PREFIXES_KEPT:]
        if not prefixes:
            return 0
        with self._lock:
            hit = self._longest_hit(prefixes)
            for prefix in prefixes[hit + 1 :]:
                self._store(prefix)
        if hit < 0:
            return 0
        return prefixes[hit].tokens // OPENAI_CACHE_GRANULE * OPENAI_CACHE_GRANULE

    def _longest_hit(self, prefixes: list[_Prefix]) -> int:
        now = self._clock()
        for i in range(len(prefixes) - 1, -1, -1):
            entry = self._expiry.get(prefixes[i].key)
            if entry is not None and entry[0] > now:
                self._store(prefixes[i], max(entry[1], prefixes[i].ttl_s))
                return i
        return -1

    def _store(self, prefix: _Prefix, ttl_s: float | None = None) -> None:
        ttl = prefix.ttl_s if ttl_s is None else ttl_s
        self._expiry[prefix.key] = (self._clock() + ttl, ttl)
        self._expiry.move_to_end(prefix.key)
        while len(self._expiry) > self._max_entries:
            self._expiry.popitem(last=False)

    def _anthropic_prefixes(self, model: str, body: dict[str, Any]) -> Iterator[_Prefix]:
        running = hashlib.blake2b(b"anthropic\0" + model.encode(), digest_size=16)
        floor = self._min_tokens(model)
        for item in anthropic_prompt_prefix(body):
            if item.role is not None and item.block == 0:
                running.update(b"\0" + item.role.encode())
            running.update(_identity(item.item))
            marker = item.item.get("cache_control") if isinstance(item.item, dict) else None
            # A breakpoint that ends a prefix shorter than the model's floor is not cached.
            if marker and item.tokens >= floor:
                yield self._marked(running, item.tokens, marker)

    def _marked(self, running: Any, tokens: int, marker: dict[str, Any]) -> _Prefix:
        one_hour = marker.get("ttl") == "1h"
        ttl = ONE_HOUR_S if one_hour else self._ttl_s
        return _Prefix(running.copy().digest(), tokens, ttl, one_hour)

    def _openai_prefixes(self, model: str, body: dict[str, Any]) -> Iterator[_Prefix]:
        running = hashlib.blake2b(b"openai\0" + model.encode(), digest_size=16)
        tokens = 0
        for tool in body.get("tools") or ():
            running.update(_identity(tool))
            tokens += TOOL_OVERHEAD + text_tokens(orjson.dumps(tool).decode())
        for message in body["messages"]:
            running.update(_identity(message))
            tokens += MESSAGE_OVERHEAD + content_tokens(message.get("content"))
            if message.get("tool_calls"):
                tokens += text_tokens(orjson.dumps(message["tool_calls"]).decode())
            yield _Prefix(running.copy().digest(), tokens, self._ttl_s)


def _identity(item: Any) -> bytes:
    """The bytes that identify a prompt element; a `cache_control` marker is no part of it."""
    if isinstance(item, dict) and "cache_control" in item:
        item = {k: v for k, v in item.items() if k != "cache_control"}
    return orjson.dumps(item) + b"\0"
