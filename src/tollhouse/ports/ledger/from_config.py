"""The ledger store a `ledger:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import LedgerConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore


def store_from_config(config: LedgerConfig) -> LedgerStore | None:
    """An unopened store, or None when the ledger is off. Raises `SecretError` (a
    ValueError naming the config key) when the PostgreSQL reference can't be resolved."""
    if config.backend == "off":
        return None
    if config.backend == "postgres":
        assert config.postgres is not None  # the config loader requires it
        return PostgresLedgerStore(resolve_secret(config.postgres, key_path="$.ledger.postgres"))
    return SQLiteLedgerStore(config.sqlite_path)
