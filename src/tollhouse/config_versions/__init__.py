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
"""
