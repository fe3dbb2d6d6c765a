"""The config's schemas are checked at load with errors naming the key; schemas never make
the gateway fetch a document; the cache of request schemas stays bounded."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.config import ConfigError, parse_config
from tollhouse.stages.check.json_schemas import SchemaCache, SchemaError, compile_schema

ROUTE = {"deployments": [{"provider": "sim", "model": "claude-haiku-4-5"}]}
SIM = {"sim": {"type": "simulator"}}


def config_with(schemas: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "providers": SIM,
        "schemas": schemas,
        "models": {"m": {**ROUTE, "structured_output": policy}},
    }


def test_a_route_naming_an_undefined_schema_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\$\.models\.m\.structured_output\.schema: unknown"):
        parse_config(config_with({"order": {"type": "object"}}, {"schema": "ordre"}))


def test_a_schema_that_is_not_json_schema_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"\$\.schemas\.order: not a valid JSON Schema"):
        parse_config(config_with({"order": {"type": "nope"}}, {"schema": "order"}))


def test_an_unknown_policy_value_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"structured_output\.on_invalid"):
        parse_config(config_with({}, {"on_invalid": "shrug"}))


@pytest.mark.parametrize("ref", ["http://127.0.0.1:9/schema.json", "file:///etc/passwd"])
def test_a_reference_to_another_document_is_refused_not_fetched(ref: str) -> None:
    with pytest.raises(SchemaError, match="is not allowed"):
        compile_schema({"type": "object", "properties": {"a": {"$ref": ref}}})


def test_references_inside_the_schema_work() -> None:
    schema = compile_schema(
        {"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}
    )
    assert schema.errors({"a": 1}) == []
    assert schema.errors({"a": "x"}) == ['at /a: "x" is not of type "integer"']


def test_errors_are_few_and_short() -> None:
    schema = compile_schema({"type": "array", "items": {"type": "integer"}})
    errors = schema.errors(["x" * 1000] * 10)
    assert len(errors) == 3
    assert all(len(e) <= 300 for e in errors)


def test_the_request_schema_cache_is_bounded_and_keeps_bad_schemas_as_errors() -> None:
    cache = SchemaCache(max_entries=4, max_schema_bytes=200)
    for n in range(20):
        cache.get({"type": "object", "maxProperties": n})
    assert len(cache) == 4
    cache.get({"type": "object", "description": "x" * 500})  # too big to keep
    assert len(cache) == 4
    for _ in range(2):
        with pytest.raises(SchemaError):
            cache.get({"type": 5})
    same = cache.get({"type": "object", "maxProperties": 19})
    assert same is cache.get({"maxProperties": 19, "type": "object"})  # key order aside
