"""Validating one structured answer: jsonschema (compiled Draft 2020-12 validator),
fastjsonschema (generated code) and jsonschema-rs (Rust), side by side in one run.

Each validator is compiled once, then a valid and an invalid answer (an order of the shape
the tests use) are parsed and validated many times; medians of repeated runs, as ratios to
jsonschema. Not run by CI: `python bench/json_schema_validators.py`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "product_name": {"type": "string", "minLength": 1},
        "price": {"type": "number", "minimum": 0},
        "quantity": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        "shipping": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "express": {"type": "boolean"}},
            "required": ["city"],
        },
    },
    "required": ["product_name", "price", "quantity", "tags"],
    "additionalProperties": False,
}
VALID = orjson.dumps(
    {
        "product_name": "green tea",
        "price": 5.5,
        "quantity": 2,
        "tags": ["tea", "green", "loose leaf"],
        "shipping": {"city": "Lyon", "express": False},
    }
)
INVALID = orjson.dumps({"product_name": "green tea", "price": "5.50", "quantity": 2, "tags": []})
ROUNDS = 2000
REPEATS = 7


def _jsonschema() -> Callable[[bytes], str | None]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(SCHEMA)

    def check(raw: bytes) -> str | None:
        error = next(iter(validator.iter_errors(orjson.loads(raw))), None)
        return None if error is None else error.message

    return check


def _fastjsonschema() -> Callable[[bytes], str | None]:
    import fastjsonschema

    validate = fastjsonschema.compile(SCHEMA)

    def check(raw: bytes) -> str | None:
        try:
            validate(orjson.loads(raw))
        except fastjsonschema.JsonSchemaValueException as error:
            return str(error.message)
        return None

    return check


def _jsonschema_rs() -> Callable[[bytes], str | None]:
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(SCHEMA)

    def check(raw: bytes) -> str | None:
        error = next(iter(validator.iter_errors(orjson.loads(raw))), None)
        return None if error is None else error.message

    return check


def _time(check: Callable[[bytes], str | None]) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        check(VALID)
        check(INVALID)
    return (time.perf_counter() - start) / (2 * ROUNDS) * 1e6


def main() -> None:
    candidates = {
        "jsonschema": _jsonschema,
        "fastjsonschema": _fastjsonschema,
        "jsonschema-rs": _jsonschema_rs,
    }
    compile_us: dict[str, float] = {}
    checks = {}
    for name, build in candidates.items():
        start = time.perf_counter()
        checks[name] = build()
        compile_us[name] = (time.perf_counter() - start) * 1e6
    runs: dict[str, list[float]] = {name: [] for name in checks}
    for _ in range(REPEATS):  # interleaved, so that load on the machine hits all alike
        for name, check in checks.items():
            runs[name].append(_time(check))
    base = statistics.median(runs["jsonschema"])
    print(f"{'validator':<16}{'median µs/answer':>18}{'ratio':>8}{'import+compile µs':>18}")
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"{name:<16}{median:>18.2f}{median / base:>8.2f}{compile_us[name]:>18.0f}")


if __name__ == "__main__":
    main()
