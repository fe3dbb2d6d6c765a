"""The simulator's refusal of a malformed request, and the small checks both formats share.

Validation is the simulator's own (not the gateway's), written after what the real APIs
refuse, so that a gateway bug that forwards a bad request is caught by its tests the way a
provider would catch it.
"""

from __future__ import annotations

from typing import Any

from tollhouse.errors import BadRequest
from tollhouse.wire.request_body import decode_json_object, json_type

__all__ = ["InvalidRequest", "decode_body", "is_int", "is_number", "is_str_list", "json_type"]


class InvalidRequest(Exception):
    """A 400 `invalid_request_error`; `param`/`code` fill OpenAI's error fields."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        return decode_json_object(body)
    except BadRequest as exc:
        raise InvalidRequest(exc.message) from None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
