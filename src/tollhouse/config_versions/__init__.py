"""Config versions around the path (DESIGN.md): every applied config stored, the newest
served by every gateway on the store, a rollback one command.

- `changes.ConfigChanges`: the one way to make a version (apply a document, roll back,
  set a flag), used alike by the CLI (`tollhouse config`, `tollhouse flags`), the admin
  API and the gateway itself (`source="auto"`). A document is refused, with the loader's
  message naming the key, unless it loads and its secrets resolve here.
- `watch.VersionWatch`: what keeps one gateway on the newest version: it records the
  file's config at start (when its content differs from the newest version's), polls the
  store every `config_store.poll_seconds`, and swaps in a newer version's snapshot; a
  version that fails to load is refused (logged, shown by /readyz) and the old one serves.

For other parts of the gateway:
- A change made on top of the newest version (a guardrail setting a canary back, a
  promotion step, a flag, a catalog update): `await ConfigChanges(store).edit(change,
  source=..., note=why)`, `change` mapping the newest version to the new document (run
  again on top of another change that lands first); in the gateway, then `await
  gateway.versions.check_now()` to serve it here at once.
- What a version decides and a call needs is read from the snapshot the call started on
  (`Gateway.handle` reads `self.snapshot` once; `call.config_version` is its id), never
  from `gateway.config` later in the call. A new per-version part (variant tables, say) is
  a field of `gateway_snapshot.Snapshot`, built in `first_snapshot` and `next_snapshot`.
- The served version: `gateway.config_version` (None when the gateway keeps no versions);
  the newest stored: `await store.latest_id()`.
"""
