"""What an operator sees: metrics, logs and (with the ledger) reports."""
