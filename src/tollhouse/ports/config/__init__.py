"""The config port: every configuration a gateway has served, as numbered versions.

- `base.ConfigVersion`: one stored version (id, time, source, author note, content hash,
  the config document with its secrets as references `env:NAME` / `file:PATH`, never
  their values) and `base.ConfigStore`, the interface of a store.
- `sqlite.SQLiteConfigStore` (embedded default: the keys' SQLite file) and
  `postgres.PostgresConfigStore` (shared by many gateways) implement it on the schema
  `migrations.CONFIG` grows step by step.
- `from_config.config_store_from_config` builds the store a config's `config_store:`
  section names (by default the keys store's own database).

The store only keeps versions; deciding what a new version may hold (it loads, its
secrets resolve) is `tollhouse.config_versions.changes`, and serving the newest one is
`tollhouse.config_versions.watch`. The newest version (highest id) is the one every
gateway on the store serves: a rollback is a new version carrying an older document.
"""
