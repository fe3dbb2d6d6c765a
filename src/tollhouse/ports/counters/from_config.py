"""The counter store a `counters:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import CountersConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.counters.base import CounterStore
from tollhouse.ports.counters.in_process import InProcessCounterStore
from tollhouse.ports.counters.redis import RedisCounterStore


def counter_store_from_config(config: CountersConfig) -> CounterStore:
    """An unconnected store. Raises ValueError naming the key for an unresolvable reference
    (`SecretError`) or a URL that is no Redis URL; the message never quotes the URL, which
    may hold a password."""
    if config.backend == "in_process":
        return InProcessCounterStore()
    url = config.redis_url
    if url.startswith(("env:", "file:")):
        url = resolve_secret(url, key_path="$.counters.redis_url")
    try:
        return RedisCounterStore(url, prefix=config.prefix, timeout=config.timeout_seconds)
    except ValueError:
        raise ValueError(
            "$.counters.redis_url: expected redis://[[user]:password@]host[:port][/db] "
            "(or rediss:// for TLS)"
        ) from None
