"""The response store a `response_cache:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import ResponseCacheConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.cache.base import ResponseStore
from tollhouse.ports.cache.in_process import InProcessResponseStore
from tollhouse.ports.cache.redis import RedisResponseStore
from tollhouse.ports.cache.sqlite import SQLiteResponseStore


def response_store_from_config(config: ResponseCacheConfig) -> ResponseStore:
    """An unopened store. Raises ValueError naming the key for an unresolvable reference or
    a URL that is no Redis URL (never quoting it, it may hold a password)."""
    caps = {"max_entries": config.max_entries, "max_bytes": config.max_bytes}
    if config.backend == "sqlite":
        return SQLiteResponseStore(config.sqlite_path, **caps)
    if config.backend == "redis":
        url = config.redis_url
        if url.startswith(("env:", "file:")):
            url = resolve_secret(url, key_path="$.response_cache.redis_url")
        try:
            return RedisResponseStore(
                url, prefix=config.prefix, timeout=config.timeout_seconds, **caps
            )
        except ValueError:
            raise ValueError(
                "$.response_cache.redis_url: expected redis://[[user]:password@]host[:port][/db]"
                " (or rediss:// for TLS)"
            ) from None
    return InProcessResponseStore(**caps)
