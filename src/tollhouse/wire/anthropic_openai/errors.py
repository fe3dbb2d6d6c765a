"""Upstream error bodies and stream error events, re-rendered in the client's format.

An upstream may answer in either provider's shape, or in the looser shapes of
OpenAI-compatible servers (`{"error": "text"}`, `{"message": ..., "type": ...}`,
`{"detail": "text"}`), or with an HTML page or nothing at all. The message is always kept
(a non-JSON body becomes the message, truncated). The type is kept when the body already has
the target format's shape; across formats it follows the HTTP status, as the real provider's
would (OpenAI answers a bad key with a 401 `invalid_request_error`, Anthropic with an
`authentication_error`), and the official SDKs choose their exception class by that status.
A stream error event has no status of its own, so its type stands for one. `param` and `code`
survive only into the OpenAI format; the Anthropic one has no place for them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from tollhouse.errors import (
    ANTHROPIC_TYPE_BY_STATUS,
    OPENAI_TYPE_BY_STATUS,
    error_type_for_status,
    render_error_body,
)
from tollhouse.types import WireFormat

MAX_RAW_MESSAGE_CHARS = 500

# Highest status first so that the lowest one wins: "timeout" stands for 408, not 504.
_STATUS_BY_TYPE: dict[str, int] = {
    etype: status
    for table in (ANTHROPIC_TYPE_BY_STATUS, OPENAI_TYPE_BY_STATUS)
    for status, etype in sorted(table.items(), reverse=True)
}


class _UpstreamError(NamedTuple):
    shape: WireFormat | None
    message: str | None
    type: str | None
    param: str | None
    code: str | None
    request_id: str | None


def translate_error_body(body: bytes, status: int, to_format: WireFormat) -> bytes:
    """An upstream error body in either format (or garbage, or empty) as a `to_format` body."""
    try:
        doc = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        doc = None
    error = _read_error(doc)
    message = error.message
    if message is None and doc is None and body.strip():
        message = body.decode(errors="replace").strip()[:MAX_RAW_MESSAGE_CHARS]
    return _render(error, message or f"Upstream returned HTTP {status}.", status, to_format)


def translate_stream_error(doc: Any, to_format: WireFormat) -> bytes:
    """The JSON payload of an upstream stream error event as a `to_format` error payload."""
    error = _read_error(doc)
    status = _STATUS_BY_TYPE.get(error.type or "", 500)
    return _render(error, error.message or "Upstream stream failed.", status, to_format)


def _render(error: _UpstreamError, message: str, status: int, to_format: WireFormat) -> bytes:
    etype = error.type
    if etype is None or error.shape != to_format:
        etype = error_type_for_status(to_format, status)
    return render_error_body(
        to_format,
        message,
        anthropic_type=etype,
        openai_type=etype,
        param=error.param,
        code=error.code,
        request_id=error.request_id,
    )


def _read_error(doc: Any) -> _UpstreamError:
    if not isinstance(doc, dict):
        return _UpstreamError(None, None, None, None, None, None)
    inner = doc.get("error")
    if isinstance(inner, str):
        return _UpstreamError(None, inner, None, None, None, None)
    shape: WireFormat | None = None
    if isinstance(inner, dict):
        shape = "anthropic" if doc.get("type") == "error" else "openai"
    fields = inner if isinstance(inner, dict) else doc
    message = fields.get("message")
    if not isinstance(message, str) and isinstance(doc.get("detail"), str):
        message = doc["detail"]
    request_id = doc.get("request_id")
    return _UpstreamError(
        shape=shape,
        message=message if isinstance(message, str) else None,
        type=_text(fields.get("type")),
        param=_text(fields.get("param")),
        code=_text(fields.get("code")),
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)
