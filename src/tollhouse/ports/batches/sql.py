"""The batch store's statements, the same on SQLite and PostgreSQL but for the
placeholder (`?` or `%s`), and its rows read back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tollhouse.ports.batches.base import StoredBatch, StoredFile

_BATCH_COLUMNS = (
    "id, provider_batch_id, client_format, key_id, provider, models, headers, lines, state, "
    "created_at, recorded_by"
)


class Statements:
    """`p` the placeholder; `same` the dialect's NULL-safe equality (`IS` on SQLite, `IS
    NOT DISTINCT FROM` on PostgreSQL): an open gateway's batches belong to no key."""

    def __init__(self, p: str, same: str) -> None:
        self.add_batch = (
            f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES "
            f"({', '.join([p] * 11)}) ON CONFLICT (id) DO NOTHING"
        )
        self.get_batch = f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = {p}"
        self.owned = (
            f"SELECT id FROM batches WHERE key_id {same} {p} AND client_format = {p} "
            f"ORDER BY created_at DESC, id DESC LIMIT {p}"
        )
        self.unrecorded = (
            f"SELECT id FROM batches WHERE recorded_at IS NULL ORDER BY created_at LIMIT {p}"
        )
        self.claim = (
            f"UPDATE batches SET recorded_by = {p}, claimed_at = {p} WHERE id = {p} "
            f"AND recorded_at IS NULL AND (recorded_by IS NULL OR claimed_at < {p})"
        )
        self.done = (
            f"UPDATE batches SET recorded_at = {p}, state = 'recorded', lines = NULL "
            f"WHERE id = {p} AND recorded_by = {p}"
        )
        self.add_file = (
            f"INSERT INTO batch_files (id, key_id, provider, lines, created_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO NOTHING"
        )
        self.get_file = (
            f"SELECT id, key_id, provider, lines, created_at FROM batch_files WHERE id = {p}"
        )
        self.take_file = f"UPDATE batch_files SET lines = NULL WHERE id = {p} AND lines IS NOT NULL"
        self.give_back_file = f"UPDATE batch_files SET lines = {p} WHERE id = {p} AND lines IS NULL"


def batch_params(batch: StoredBatch) -> tuple[Any, ...]:
    return (
        batch.id,
        batch.provider_batch_id,
        batch.client_format,
        batch.key_id,
        batch.provider,
        orjson.dumps(batch.models).decode(),
        orjson.dumps(batch.headers).decode(),
        orjson.dumps(batch.lines).decode(),
        batch.state,
        batch.created_at,
        batch.recorded_by,
    )


def owned_params(key_id: str | None, client_format: str, limit: int) -> tuple[Any, ...]:
    return (key_id, client_format, limit)


def file_params(file: StoredFile) -> tuple[Any, ...]:
    lines = None if file.lines is None else orjson.dumps(file.lines).decode()
    return (file.id, file.key_id, file.provider, lines, file.created_at)


def batch_row(row: Sequence[Any]) -> StoredBatch:
    return StoredBatch(
        id=row[0],
        provider_batch_id=row[1],
        client_format=row[2],
        key_id=row[3],
        provider=row[4],
        models=orjson.loads(row[5]),
        headers=orjson.loads(row[6]),
        lines=orjson.loads(row[7]) if row[7] is not None else [],
        state=row[8],
        created_at=float(row[9]),
        recorded_by=row[10],
    )


def file_row(row: Sequence[Any]) -> StoredFile:
    lines = orjson.loads(row[3]) if row[3] is not None else None
    return StoredFile(row[0], row[1], row[2], lines, float(row[4]))
