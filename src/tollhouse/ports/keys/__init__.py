"""The keys port: gateway API keys, stored hashed, with their scopes, limits and budget.

- `record.KeySpec` / `record.KeyRecord`: what an operator sets on a key, and the key as
  stored (the secret only as its SHA-256; the module says why that hash).
- `base.KeyStore`: the interface of a store; `sqlite.SQLiteKeyStore` (embedded default)
  and `postgres.PostgresKeyStore` (shared by many gateways) implement it, on a schema
  that `migrations` grows step by step.
- `key_ring.KeyRing`: what the request path talks to: `authenticate(secret)` with a short
  in-memory cache, and `check_model(record, model)` for the key's model scopes.
- `admin_token` guards the admin API; `admin_api.keys_admin` answers its key routes.
"""
