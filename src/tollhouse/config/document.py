"""A configuration as a document: the plain JSON object an operator wrote, before it is
validated into a `GatewayConfig`.

Config versions store documents, not `GatewayConfig`s, so that a stored version reads as
its author wrote it: flags and `flag:NAME` references as written, secrets as references
(`env:NAME`, `file:PATH`, which is all the loader accepts), no defaults filled in.

- `read_document(path)`: a YAML or TOML file as a JSON-safe document (YAML dates and
  timestamps become ISO 8601 text, which the loader reads back as dates).
- `content_hash(document)`: SHA-256 of its canonical JSON (keys sorted, compact), so two
  documents that differ only in key order or formatting have the same hash.
- `render(document)`: the document as YAML, keys in the author's order, for `show`.
- `diff(old, new)`: a unified diff of the two renderings with their keys sorted, so a
  diff shows changed values, never a reordering.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import yaml

Document = dict[str, Any]


class DocumentError(ValueError):
    pass


def read_document(path: str | Path) -> Document:
    """The document in a YAML (`.yaml`, `.yml`, anything else) or TOML (`.toml`) file;
    `DocumentError` saying why when it can't be read or isn't a mapping."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DocumentError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "YAML"
        raise DocumentError(f"{path}: not valid {kind}: {exc}") from None
    return as_document(data or {}, source=str(path))


def as_document(data: Any, *, source: str = "config") -> Document:
    """`data` (a mapping) as a JSON-safe document; `DocumentError` if it isn't a mapping."""
    if not isinstance(data, dict):
        raise DocumentError(f"{source}: expected a mapping at the top level")
    document: Document = msgspec.to_builtins(data, str_keys=True)
    return document


def canonical_json(document: Document) -> bytes:
    return msgspec.json.encode(document, order="sorted")


def content_hash(document: Document) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def render(document: Document, *, sort_keys: bool = False) -> str:
    return yaml.safe_dump(document, sort_keys=sort_keys, allow_unicode=True, width=100)


def diff(old: Document, new: Document, *, old_name: str = "old", new_name: str = "new") -> str:
    """A unified diff from `old` to `new` ("" when their content is the same)."""
    lines = difflib.unified_diff(
        render(old, sort_keys=True).splitlines(keepends=True),
        render(new, sort_keys=True).splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
    )
    return "".join(lines)
