"""Tool inputs and structured outputs generated from JSON Schema fit the schema."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tollhouse.simulator.tool_input import sample_object


def sample(schema: Any, seed: int = 0) -> dict[str, Any]:
    return sample_object(schema, random.Random(seed))


def test_every_declared_property_is_filled_with_its_type() -> None:
    value = sample(
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "ok": {"type": "boolean"},
                "nothing": {"type": "null"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
            },
            "required": ["name"],
        }
    )
    assert isinstance(value["name"], str)
    assert isinstance(value["count"], int)
    assert not isinstance(value["count"], bool)
    assert isinstance(value["ratio"], float)
    assert isinstance(value["ok"], bool)
    assert value["nothing"] is None
    assert value["tags"]
    assert all(isinstance(t, str) for t in value["tags"])
    assert isinstance(value["where"]["lat"], float)


def test_enums_consts_and_bounds_are_honoured() -> None:
    schema = {
        "type": "object",
        "properties": {
            "unit": {"enum": ["c", "f"]},
            "kind": {"const": "fixed"},
            "age": {"type": "integer", "minimum": 18, "maximum": 20},
            "code": {"type": "string", "minLength": 12, "maxLength": 12},
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4},
        },
    }
    for seed in range(20):
        value = sample(schema, seed)
        assert value["unit"] in ("c", "f")
        assert value["kind"] == "fixed"
        assert 18 <= value["age"] <= 20
        assert len(value["code"]) == 12
        assert len(value["items"]) == 4


def test_local_refs_and_nullable_unions_are_followed() -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "properties": {
            "at": {"$ref": "#/$defs/Point"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
            "id": {"type": "string", "format": "uuid"},
        },
    }
    value = sample(schema)
    assert isinstance(value["at"]["x"], int)
    assert value["maybe"] == "2025-01-15"
    assert len(value["id"]) == 36


def test_the_same_rng_gives_the_same_value() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}}
    assert sample(schema, 5) == sample(schema, 5)


@pytest.mark.parametrize(
    "schema",
    [
        None,
        "object",
        {"type": "string"},
        {"$ref": "#"},
        {"type": "object", "properties": {"self": {"$ref": "#"}}},
        {
            "type": "array",
            "items": {"type": "array", "items": {"type": "array", "minItems": 10**6}},
        },
    ],
)
def test_odd_schemas_still_give_a_small_object(schema: Any) -> None:
    value = sample(schema)
    assert isinstance(value, dict)
    assert len(repr(value)) < 200_000
