"""JSON Schemas compiled into validators, and what a value breaks of one.

Validation is jsonschema-rs (Draft 2020-12 and earlier, detected from `$schema`; compiled
to a Rust validator, measured about 19x faster than `jsonschema`'s compiled validator and
a little faster than fastjsonschema, which generates Python code from the schema: see
bench/results/json-schema-validators.md). A schema never makes the gateway fetch anything:
a `$ref` to another document is refused when the schema is compiled (no network, no file
read on the request path, nothing a client's tool schema could point the gateway at).

The config's schemas are compiled once per config snapshot (`compile_schema`, at load);
the schemas a request brings (its tools' input schemas) through `SchemaCache`, bounded in
entries and in the size of a schema it keeps, so a client sending new schemas call after
call can neither grow memory nor make the gateway compile the same schema twice in a row.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import jsonschema_rs
import orjson

# How much of a failure is told back (to the model in the corrective turn, to the client
# in a refusal, to the record): the first few errors, each cut to a line.
MAX_ERRORS = 3
MAX_ERROR_CHARS = 300


class SchemaError(ValueError):
    """A schema that is not a valid JSON Schema, or refers to another document."""


class _Validator(Protocol):
    def iter_errors(self, instance: Any) -> Any: ...


class CompiledSchema:
    """One schema's validator; `errors(value)` lists what `value` breaks (empty: valid)."""

    __slots__ = ("_validator",)

    def __init__(self, validator: _Validator) -> None:
        self._validator = validator

    def errors(self, value: Any) -> list[str]:
        found: list[str] = []
        for error in self._validator.iter_errors(value):
            where = "/".join(str(part) for part in error.instance_path)
            message = f"at /{where}: {error.message}" if where else str(error.message)
            found.append(message[:MAX_ERROR_CHARS])
            if len(found) >= MAX_ERRORS:
                break
        return found


def _no_remote_documents(uri: str) -> Any:
    raise SchemaError(f"$ref to another document ({uri[:200]}) is not allowed")


def compile_schema(schema: Any) -> CompiledSchema:
    """`schema` compiled; `SchemaError` saying why when it is not a usable JSON Schema."""
    if not isinstance(schema, dict | bool):
        raise SchemaError("expected a JSON Schema (an object)")
    try:
        validator = jsonschema_rs.validator_for(schema, retriever=_no_remote_documents)
    except (jsonschema_rs.ValidationError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise SchemaError(f"not a valid JSON Schema: {first[:MAX_ERROR_CHARS]}") from None
    return CompiledSchema(validator)


class SchemaCache:
    """Schemas that come with requests, compiled on first sight and kept LRU: at most
    `max_entries`, none bigger than `max_schema_bytes` (a bigger one is compiled for its
    call and not kept). A schema that does not compile is kept as its error, so a bad tool
    schema sent again is not compiled again."""

    def __init__(self, max_entries: int = 256, max_schema_bytes: int = 64 * 1024) -> None:
        self.max_entries = max_entries
        self.max_schema_bytes = max_schema_bytes
        self._entries: OrderedDict[bytes, CompiledSchema | SchemaError] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, schema: Any) -> CompiledSchema:
        """`schema` compiled (cached); raises `SchemaError` for an unusable one."""
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        entry = self._entries.get(key)
        if entry is None:
            try:
                entry = compile_schema(schema)
            except SchemaError as exc:
                entry = exc
            if len(key) <= self.max_schema_bytes:
                self._entries[key] = entry
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if isinstance(entry, SchemaError):
            raise entry
        return entry
