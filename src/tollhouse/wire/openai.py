"""The OpenAI Chat Completions wire format as the gateway needs it: validation of what the
official SDK sends (only the fields a stage reads; everything else is forwarded untouched)
and the few bodies the gateway itself renders in this format."""

from __future__ import annotations

from typing import Any

import orjson

from tollhouse.errors import BadRequest, error_type_for_status
from tollhouse.wire.request_body import (
    decode_json_object,
    require_messages,
    require_model,
    require_positive_int,
    require_type,
)
from tollhouse.wire.sse import frame_event

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
DONE = b"data: [DONE]\n\n"


def parse_chat_request(body: bytes) -> dict[str, Any]:
    doc = decode_json_object(body)
    require_model(doc)
    require_messages(doc, ROLES)
    require_positive_int(doc, "max_tokens", required=False)
    require_positive_int(doc, "max_completion_tokens", required=False)
    require_positive_int(doc, "n", required=False)
    require_type(doc, "stream", (bool,), "a boolean")
    require_type(doc, "stream_options", (dict,), "an object")
    require_type(doc, "tools", (list,), "an array")
    require_type(doc, "user", (str,), "a string")
    stop = require_type(doc, "stop", (str, list), "a string or an array of strings")
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise BadRequest("stop: expected a string or an array of strings", param="stop")
    for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        require_type(doc, key, (int, float), "a number")
    return doc


def parse_embeddings_request(body: bytes) -> dict[str, Any]:
    """A `POST /v1/embeddings` body: `model`, and `input` as a non-empty string, array of
    strings, array of token ids or array of such arrays; the rest is the upstream's to judge.
    Never a stream."""
    doc = decode_json_object(body)
    require_model(doc)
    value = doc.get("input")
    if isinstance(value, str):
        shapes_ok = bool(value)
    elif isinstance(value, list) and value:
        shapes_ok = all(_embedding_input(item) for item in value) or all(
            _token_id(item) for item in value
        )
    else:
        shapes_ok = False
    if not shapes_ok:
        raise BadRequest(
            "input: expected a non-empty string, array of strings or array of token ids",
            param="input",
        )
    if doc.get("stream") not in (None, False):
        raise BadRequest("stream: embeddings are not streamed", param="stream")
    require_positive_int(doc, "dimensions", required=False)
    require_type(doc, "user", (str,), "a string")
    return doc


def _embedding_input(item: Any) -> bool:
    if isinstance(item, str):
        return bool(item)
    return isinstance(item, list) and bool(item) and all(_token_id(v) for v in item)


def _token_id(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and item >= 0


def stream_error_event(message: str, status: int) -> bytes:
    """A failure after the stream started: the SDK raises `APIError` on a chunk with `error`."""
    doc = {
        "error": {
            "message": message,
            "type": error_type_for_status("openai", status),
            "param": None,
            "code": None,
        }
    }
    return frame_event(None, orjson.dumps(doc))


def model_object(model_id: str, owner: str, created: int) -> dict[str, Any]:
    """One model as `GET /v1/models/{id}` answers it."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


def models_list(models: list[tuple[str, str, int]]) -> dict[str, Any]:
    """`GET /v1/models` in OpenAI's shape; `models` holds (id, owner, created unix time)."""
    return {"object": "list", "data": [model_object(*entry) for entry in models]}


def completion_stream(completion: dict[str, Any], include_usage: bool) -> list[bytes]:
    """A whole `chat.completion` as the chunks a stream of it would be (per choice, its
    content and tool calls, then its finish reason), ending with the usage chunk when asked
    and `[DONE]`: how a cached or degraded answer is served to a client that asked for a
    stream."""
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
    }
    usage_field = {"usage": None} if include_usage else {}
    chunks = []
    for position, choice in enumerate(completion["choices"]):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("refusal"):
            delta["refusal"] = message["refusal"]
        calls = message.get("tool_calls")
        if calls:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
        chunks.append(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
            | usage_field
        )
        chunks.append(
            {
                **base,
                "choices": [
                    {"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}
                ],
            }
            | usage_field
        )
    if include_usage:
        chunks.append({**base, "choices": [], "usage": completion.get("usage")})
    return [frame_event(None, orjson.dumps(chunk)) for chunk in chunks] + [DONE]


# The roles whose messages are the system prompt, kept first in a Chat Completions request.
SYSTEM_ROLES = frozenset({"system", "developer"})


def tool_links(message: Any) -> tuple[list[str], list[str]]:
    """The tool call ids a message opens (an assistant's `tool_calls`) and closes (a `tool`
    message's `tool_call_id`)."""
    opened: list[str] = []
    closed: list[str] = []
    if not isinstance(message, dict):
        return opened, closed
    calls = message.get("tool_calls")
    if message.get("role") == "assistant" and isinstance(calls, list):
        opened = [c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str)]
    if message.get("role") == "tool" and isinstance(message.get("tool_call_id"), str):
        closed.append(message["tool_call_id"])
    return opened, closed


def latest_user_text(messages: Any) -> str:
    """The text of the last user message ("" for none)."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    return ""
