"""The key store a `keys:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import KeysConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.keys.base import KeyStore
from tollhouse.ports.keys.postgres import PostgresKeyStore
from tollhouse.ports.keys.sqlite import SQLiteKeyStore


def key_store_from_config(config: KeysConfig) -> KeyStore:
    """An unopened key store; raises `SecretError` naming the key when its reference fails."""
    if config.backend == "postgres":
        assert config.postgres is not None  # the config loader requires it
        return PostgresKeyStore(resolve_secret(config.postgres, key_path="$.keys.postgres"))
    return SQLiteKeyStore(config.sqlite_path)
