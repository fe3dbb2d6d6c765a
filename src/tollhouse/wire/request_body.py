"""Decoding a request body into a JSON object, with errors a client can act on."""

from __future__ import annotations

from typing import Any

import jiter

from tollhouse.errors import BadRequest

_DUPLICATE = "Detected duplicate key"


def decode_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. A key twice in one object, at any depth, is refused: the
    gateway would read the last `model` or `max_tokens` where an upstream handed the same
    bytes may read the first. jiter finds duplicates in the one parse (orjson keeps the last
    silently) and caches only keys, so no client text outlives its call in a string cache."""
    if not body or body.isspace():  # isspace: no copy of a large body, as strip() makes
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        doc = jiter.from_json(
            body, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys"
        )
    except ValueError as exc:
        message = str(exc)
        if message.startswith(_DUPLICATE):
            raise BadRequest(
                f"request body has a duplicate key{message[len(_DUPLICATE) :]}; "
                "send each key once in an object"
            ) from None
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"request body must be a JSON object, not {json_type(doc)}")
    return doc


def json_type(value: Any) -> str:
    """How an error message names the JSON type of `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def require_type(body: dict[str, Any], key: str, kinds: tuple[type, ...], what: str) -> Any:
    """`body[key]` when present and of one of `kinds` (booleans are never integers)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise BadRequest(f"{key}: expected {what}, got a boolean", param=key)
    if not isinstance(value, kinds):
        raise BadRequest(f"{key}: expected {what}, got {json_type(value)}", param=key)
    return value


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise BadRequest("model: field required", param="model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: expected a non-empty string", param="model")
    return model


def require_positive_int(body: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = require_type(body, key, (int,), "an integer")
    if value is None:
        if required:
            raise BadRequest(f"{key}: field required", param=key)
        return None
    if value < 1:
        raise BadRequest(f"{key}: expected an integer >= 1, got {value}", param=key)
    return int(value)


def require_messages(
    body: dict[str, Any], roles: frozenset[str], *, allow_empty: bool = False
) -> list[dict[str, Any]]:
    """`body["messages"]`, each with a role of `roles`; at least one unless `allow_empty`."""
    messages = body.get("messages")
    if messages is None:
        raise BadRequest("messages: field required", param="messages")
    if not isinstance(messages, list):
        raise BadRequest(
            f"messages: expected an array, got {json_type(messages)}", param="messages"
        )
    if not messages and not allow_empty:
        raise BadRequest("messages: at least one message is required", param="messages")
    allowed = ", ".join(sorted(roles))
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where}: expected an object, got {json_type(message)}", param=where)
        role = message.get("role")
        if not isinstance(role, str) or role not in roles:
            raise BadRequest(
                f"{where}.role: expected one of {allowed}, got {role!r}", param=f"{where}.role"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise BadRequest(
                f"{where}.content: expected a string or an array of content blocks, "
                f"got {json_type(content)}",
                param=f"{where}.content",
            )
    return messages
