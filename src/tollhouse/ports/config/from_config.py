"""The config store a config's `config_store:` section asks for: by default the keys
store's own database (the keys' SQLite file, or their PostgreSQL).

`config_store_location` is where that is, for another store kept in the same database
(eval results, say: its own class in this folder, its tables as steps at the end of
`migrations.CONFIG`, opened on this location)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tollhouse.config.model import GatewayConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore


@dataclass(frozen=True, slots=True)
class ConfigStoreLocation:
    backend: Literal["sqlite", "postgres"]
    target: str  # the SQLite file's path, or the resolved PostgreSQL connection string


def config_store_location(config: GatewayConfig) -> ConfigStoreLocation:
    """Where `config` keeps its config store; `SecretError` naming the key when the
    connection string's reference fails (the value itself is never in a message)."""
    settings, keys = config.config_store, config.keys
    backend = settings.backend or keys.backend
    if backend == "postgres":
        if settings.postgres is not None:
            reference, key_path = settings.postgres, "$.config_store.postgres"
        else:
            assert keys.postgres is not None  # the config loader requires one of them
            reference, key_path = keys.postgres, "$.keys.postgres"
        return ConfigStoreLocation("postgres", resolve_secret(reference, key_path=key_path))
    return ConfigStoreLocation("sqlite", settings.sqlite_path or keys.sqlite_path)


def config_store_from_config(config: GatewayConfig) -> ConfigStore:
    """An unopened store; raises `SecretError` naming the key when its reference fails."""
    location = config_store_location(config)
    if location.backend == "postgres":
        return PostgresConfigStore(location.target)
    return SQLiteConfigStore(location.target)
