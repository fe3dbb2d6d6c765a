"""Where Message Batches are kept beside the ledger, so any gateway process on the same
database serves them (`base.py`: the interface; `sqlite.py`, `postgres.py`)."""
