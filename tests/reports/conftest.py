"""The reports run over the real ledger stores: the ledger's fixtures, reused."""

from tests.ports.ledger.conftest import make_record, new_store, on_store

__all__ = ["make_record", "new_store", "on_store"]
