"""The call ledger port: one record per call, written off the request path, nothing lost.

- `record.CallRecord`: what is kept about one call.
- `base.LedgerStore`: the interface of a store; `sqlite.SQLiteLedgerStore` (embedded
  default) and `postgres.PostgresLedgerStore` (shared by many gateways) implement it, on a
  schema that `migrations` grows step by step.
- `writer.LedgerWriter`: what the request path talks to: `submit(record)` never waits; a
  background task writes batches, and parks them in a `spill.SpillFile` while the store
  is unreachable.
"""
