"""The counter store a `counters:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import CountersConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.counters.base import CounterStore
from tollhouse.ports.counters.in_process import InProcessCounterStore
from tollhouse.ports.counters.redis import RedisCounterStore


def counter_store_from_config(config: CountersConfig) -> CounterStore:
    """Raises `SecretError` (a ValueError naming the key) for an unresolvable reference."""
    if config.backend == "in_process":
        return InProcessCounterStore()
    url = config.redis_url
    if url.startswith(("env:", "file:")):
        url = resolve_secret(url, key_path="$.counters.redis_url")
    return RedisCounterStore(url, prefix=config.prefix, timeout=config.timeout_seconds)
