"""The batch store beside the ledger a `ledger:` config section asks for."""

from __future__ import annotations

from tollhouse.config.model import LedgerConfig
from tollhouse.config.secrets import resolve_secret
from tollhouse.ports.batches.base import BatchStore
from tollhouse.ports.batches.postgres import PostgresBatchStore
from tollhouse.ports.batches.sqlite import SQLiteBatchStore


def batch_store_from_config(config: LedgerConfig) -> BatchStore | None:
    """The store in the ledger's database (opened on first use), or None when the ledger
    is off: batches then live in the process that made them."""
    if config.backend == "off":
        return None
    if config.backend == "postgres":
        assert config.postgres is not None  # the config loader requires it
        return PostgresBatchStore(resolve_secret(config.postgres, key_path="$.ledger.postgres"))
    return SQLiteBatchStore(config.sqlite_path)
