"""A `KeyRecord` as a table row and back, shared by both stores so they store the same
columns the same way; they differ only in how a timestamp travels (`encode_time`,
`decode_time`): ISO 8601 text in SQLite, `timestamptz` in PostgreSQL.

JSON columns travel as text both ways (PostgreSQL casts it to and from `jsonb` in the
SQL), and are decoded by msgspec into their typed structs, so a `Decimal` budget stored as
a JSON string comes back exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from tollhouse.config.model import Budget, InputLimits, Limits
from tollhouse.ports.keys.record import KeyRecord, KeyScope

# The JSON columns and the type each decodes to.
_JSON_TYPES: dict[str, Any] = {
    "allowed_models": tuple[str, ...],
    "limits": Limits,
    "budget": Budget,
    "end_user_limits": Limits,
    "end_user_budget": Budget,
    "caps": InputLimits,
    "scopes": tuple[KeyScope, ...],
    "metadata": dict[str, Any],
}
_TIMES = ("previous_secret_valid_until", "created_at", "expires_at", "revoked_at")
# Columns are named after the fields but for `user`, a reserved word in PostgreSQL.
_FIELD_BY_COLUMN = {"user_id": "user"}

COLUMNS: tuple[str, ...] = tuple(
    "user_id" if field == "user" else field for field in KeyRecord.__struct_fields__
)
JSON_COLUMNS: frozenset[str] = frozenset(_JSON_TYPES)

_encode_json = msgspec.json.Encoder().encode
_decoders = {column: msgspec.json.Decoder(kind) for column, kind in _JSON_TYPES.items()}


def encode_row(record: KeyRecord, encode_time: Callable[[datetime], Any]) -> list[Any]:
    row: list[Any] = []
    for column in COLUMNS:
        value = getattr(record, _FIELD_BY_COLUMN.get(column, column))
        if column in JSON_COLUMNS:
            value = _encode_json(value).decode()
        elif column in _TIMES and value is not None:
            value = encode_time(value)
        row.append(value)
    return row


def decode_row(row: Sequence[Any], decode_time: Callable[[Any], datetime]) -> KeyRecord:
    fields: dict[str, Any] = {}
    for column, value in zip(COLUMNS, row, strict=True):
        if column in JSON_COLUMNS:
            value = _decoders[column].decode(value)
        elif column in _TIMES and value is not None:
            value = decode_time(value)
        elif column == "end_users":
            value = bool(value)
        fields[_FIELD_BY_COLUMN.get(column, column)] = value
    return KeyRecord(**fields)
