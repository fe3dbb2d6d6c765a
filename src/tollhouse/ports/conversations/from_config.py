"""The conversation store a `conversations:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import ConversationsConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.conversations.base import ConversationStore
from tollhouse.ports.conversations.postgres import PostgresConversationStore
from tollhouse.ports.conversations.redis import RedisConversationStore
from tollhouse.ports.conversations.sqlite import SQLiteConversationStore


def conversation_store_from_config(config: ConversationsConfig) -> ConversationStore | None:
    """An unopened store, or None when conversations are off. Raises ValueError naming the
    key for an unresolvable reference or a URL that is no Redis URL (never quoting it)."""
    cap = config.max_per_key
    if config.backend == "off":
        return None
    if config.backend == "postgres":
        assert config.postgres is not None  # the config loader requires it
        conninfo = resolve_secret(config.postgres, key_path="$.conversations.postgres")
        return PostgresConversationStore(
            conninfo, max_per_tenant=cap, operation_timeout=config.timeout_seconds
        )
    if config.backend == "redis":
        url = config.redis_url
        if url.startswith(("env:", "file:")):
            url = resolve_secret(url, key_path="$.conversations.redis_url")
        try:
            return RedisConversationStore(
                url, prefix=config.prefix, max_per_tenant=cap, timeout=config.timeout_seconds
            )
        except ValueError:
            raise ValueError(
                "$.conversations.redis_url: expected redis://[[user]:password@]host[:port][/db] "
                "(or rediss:// for TLS)"
            ) from None
    return SQLiteConversationStore(config.sqlite_path, max_per_tenant=cap)
