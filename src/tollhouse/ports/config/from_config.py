"""The config store a config's `config_store:` section asks for: by default the keys
store's own database (the keys' SQLite file, or their PostgreSQL)."""

from __future__ import annotations

from tollhouse.config.model import GatewayConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore


def config_store_from_config(config: GatewayConfig) -> ConfigStore:
    """An unopened store; raises `SecretError` naming the key when its reference fails."""
    settings, keys = config.config_store, config.keys
    backend = settings.backend or keys.backend
    if backend == "postgres":
        if settings.postgres is not None:
            reference, key_path = settings.postgres, "$.config_store.postgres"
        else:
            assert keys.postgres is not None  # the config loader requires one of them
            reference, key_path = keys.postgres, "$.keys.postgres"
        return PostgresConfigStore(resolve_secret(reference, key_path=key_path))
    return SQLiteConfigStore(settings.sqlite_path or keys.sqlite_path)
