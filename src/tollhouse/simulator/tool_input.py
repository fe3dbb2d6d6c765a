"""Values that fit a JSON Schema, for simulated tool calls and structured outputs.

Every declared property is filled in (so required ones always are), enums and consts are
honoured, numbers and lengths stay within their bounds, local `$ref`s (`#/$defs/...`,
`#/definitions/...`) are followed, and the first branch of `anyOf`/`oneOf` that is not null
is taken. Deterministic for a given RNG. `pattern` is not honoured. Any input is accepted:
what is not a schema yields a plain value rather than an error, since a provider does not
validate schemas this deeply either.
"""

from __future__ import annotations

import random
from typing import Any

from tollhouse.simulator.text import VOCABULARY

_MAX_DEPTH = 8
# Bounds on the size of one value, whatever `minItems` or nesting a schema asks for.
_MAX_ITEMS = 16
_MAX_NODES = 2_000
_FORMATS = {
    "date-time": "2025-01-15T10:30:00Z",
    "date": "2025-01-15",
    "time": "10:30:00",
    "email": "user@example.com",
    "uri": "https://example.com/resource",
    "url": "https://example.com/resource",
    "hostname": "example.com",
    "ipv4": "192.0.2.10",
}


def sample_object(schema: Any, rng: random.Random) -> dict[str, Any]:
    """A JSON object for an object schema (`{}` when the schema describes something else)."""
    value = _Sampler(schema, rng).sample(schema, 0)
    return value if isinstance(value, dict) else {}


class _Sampler:
    __slots__ = ("_nodes_left", "_rng", "_root")

    def __init__(self, root: Any, rng: random.Random) -> None:
        self._root = root
        self._rng = rng
        self._nodes_left = _MAX_NODES

    def sample(self, schema: Any, depth: int) -> Any:
        self._nodes_left -= 1
        if depth > _MAX_DEPTH or self._nodes_left < 0:
            return None
        if not isinstance(schema, dict):
            return self._string({})
        if isinstance(schema.get("$ref"), str):
            return self.sample(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._rng.choice(enum)
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                chosen = next((o for o in options if not _is_null(o)), options[0])
                return self.sample(chosen, depth + 1)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return round(self._integer(schema) + self._rng.random(), 2)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema)

    def _resolve(self, ref: str) -> Any:
        node = self._root
        if not ref.startswith("#"):
            return {}
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {name: self.sample(sub, depth + 1) for name, sub in properties.items()}

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = min(_bound(schema.get("minItems"), 0), _MAX_ITEMS)
        high = _bound(schema.get("maxItems"), _MAX_ITEMS)
        count = min(max(low, self._rng.randint(1, 2)), max(high, low))
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return [self.sample(sub, depth + 1) for sub in prefix[:_MAX_ITEMS]]
        return [
            self.sample(items if isinstance(items, dict) else {}, depth + 1) for _ in range(count)
        ]

    def _integer(self, schema: dict[str, Any]) -> int:
        low = _number(schema.get("minimum"))
        if low is None and _number(schema.get("exclusiveMinimum")) is not None:
            low = int(_number(schema.get("exclusiveMinimum")) or 0) + 1
        high = _number(schema.get("maximum"))
        if high is None and _number(schema.get("exclusiveMaximum")) is not None:
            high = int(_number(schema.get("exclusiveMaximum")) or 0) - 1
        lo = int(low) if low is not None else 0
        hi = int(high) if high is not None else lo + 100
        return self._rng.randint(lo, max(lo, hi))

    def _string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            bits = self._rng.getrandbits
            return f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-8{bits(12):03x}-{bits(48):012x}"
        text = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if text is None:
            text = " ".join(self._rng.choice(VOCABULARY) for _ in range(self._rng.randint(1, 3)))
        low = _bound(schema.get("minLength"), 0)
        if len(text) < low:
            text = (text + " ") * (low // (len(text) + 1) + 1)
        high = _bound(schema.get("maxLength"), len(text))
        return text[: max(high, low)]


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if isinstance(schema.get("properties"), dict):
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _bound(value: Any, default: int) -> int:
    number = _number(value)
    return max(0, min(int(number), 10_000)) if number is not None else default
