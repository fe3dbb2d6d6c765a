"""`POST /v1/embeddings` as OpenAI answers it, with deterministic vectors: the same model,
input and dimensions always give the same unit-length vector, and different inputs give
different ones, so tests can compare what they get without a real model.

`input` is a string, an array of strings, an array of token ids or an array of such arrays
(OpenAI's four shapes); `dimensions` (default `DEFAULT_DIMENSIONS`) and
`encoding_format` (`float` or `base64`: little-endian float32, as OpenAI sends it) are
honoured. Usage counts the prompt tokens (a token id is one token; text is estimated as
elsewhere in the simulator).
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from tollhouse.simulator.request_checks import InvalidRequest
from tollhouse.tokens.estimate import text_tokens

DEFAULT_DIMENSIONS = 1536
MAX_DIMENSIONS = 3072
MAX_INPUTS = 2048


def embeddings_answer(doc: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The answer to an embeddings request `doc` and its prompt tokens; `InvalidRequest`
    for what OpenAI would refuse with 400."""
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: a model is required")
    inputs = _inputs(doc.get("input"))
    dimensions = doc.get("dimensions", DEFAULT_DIMENSIONS)
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise InvalidRequest("dimensions: expected an integer")
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise InvalidRequest(f"dimensions: expected 1 to {MAX_DIMENSIONS}, got {dimensions}")
    encoding = doc.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise InvalidRequest("encoding_format: expected float or base64")
    data = []
    tokens = 0
    for index, item in enumerate(inputs):
        tokens += len(item) if isinstance(item, list) else text_tokens(item)
        vector = deterministic_vector(model, item, dimensions)
        embedding: Any = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    answer = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return answer, tokens


def deterministic_vector(model: str, item: str | list[int], dimensions: int) -> list[float]:
    """A unit vector of `dimensions` floats drawn from a hash of `model` and `item`."""
    seed = hashlib.sha256(f"{model}\x00{item!r}".encode()).digest()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in block)
        counter += 1
    del values[dimensions:]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(value: Any) -> list[str | list[int]]:
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value and all(_is_token(v) for v in value):
        items = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise InvalidRequest("input: expected a non-empty string or array")
    if len(items) > MAX_INPUTS:
        raise InvalidRequest(f"input: at most {MAX_INPUTS} inputs per request")
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"input[{index}]: must not be empty")
        elif not (isinstance(item, list) and item and all(_is_token(v) for v in item)):
            raise InvalidRequest(f"input[{index}]: expected a string or an array of token ids")
    return items


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
