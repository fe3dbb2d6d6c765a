"""A `ConfigVersion` as a table row and back, shared by both stores: they differ only in
how a timestamp travels (ISO 8601 text in SQLite, `timestamptz` in PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from tollhouse.ports.config.base import ConfigVersion

COLUMNS = ("id", "created_at", "source", "note", "content_hash", "restores", "document")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM config_versions"

_encode = msgspec.json.Encoder().encode
_decode_document = msgspec.json.Decoder(dict[str, Any]).decode


def encode_row(version: ConfigVersion, encode_time: Callable[[datetime], Any]) -> list[Any]:
    return [
        version.id,
        encode_time(version.created_at),
        version.source,
        version.note,
        version.content_hash,
        version.restores,
        _encode(version.document).decode(),
    ]


def decode_row(row: Sequence[Any], decode_time: Callable[[Any], datetime]) -> ConfigVersion:
    id_, created_at, source, note, content_hash, restores, document = row
    return ConfigVersion(
        id=int(id_),
        created_at=decode_time(created_at),
        source=source,
        note=note,
        content_hash=content_hash,
        restores=None if restores is None else int(restores),
        document=_decode_document(document),
    )
