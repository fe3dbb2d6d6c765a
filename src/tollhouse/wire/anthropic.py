"""The Anthropic Messages wire format as the gateway needs it: validation of what the
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

ROLES = frozenset({"user", "assistant"})


def parse_messages_request(body: bytes) -> dict[str, Any]:
    doc = decode_json_object(body)
    require_model(doc)
    require_positive_int(doc, "max_tokens", required=True)
    # A thread's continuation may send no message: the gateway holds the conversation.
    messages = require_messages(doc, ROLES, allow_empty=_thread_kind(doc) == "continue")
    for i, message in enumerate(messages):
        content = message.get("content")
        if content is None:
            raise BadRequest(
                f"messages[{i}].content: field required", param=f"messages[{i}].content"
            )
        if isinstance(content, list):
            _check_blocks(content, f"messages[{i}].content")
    system = require_type(doc, "system", (str, list), "a string or an array of text blocks")
    if isinstance(system, list):
        _check_blocks(system, "system")
    require_type(doc, "stream", (bool,), "a boolean")
    require_type(doc, "metadata", (dict,), "an object")
    require_type(doc, "tools", (list,), "an array")
    stops = require_type(doc, "stop_sequences", (list,), "an array of strings")
    if stops is not None and not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop_sequences: expected an array of strings", param="stop_sequences")
    for key in ("temperature", "top_p"):
        require_type(doc, key, (int, float), "a number")
    return doc


def _thread_kind(doc: dict[str, Any]) -> str | None:
    """The kind of a request's `thread` (beta message threads), checked; None without."""
    thread = require_type(doc, "thread", (dict,), "an object")
    if thread is None:
        return None
    kind = thread.get("type")
    if kind not in ("create", "continue"):
        raise BadRequest(
            f"thread.type: expected create or continue, got {kind!r}", param="thread.type"
        )
    if kind == "continue":
        previous = thread.get("previous_message_id")
        if not isinstance(previous, str) or not previous:
            raise BadRequest(
                "thread.previous_message_id: required, a message id, when thread.type is continue",
                param="thread.previous_message_id",
            )
    return str(kind)


def parse_count_tokens_request(body: bytes) -> dict[str, Any]:
    doc = decode_json_object(body)
    require_model(doc)
    require_messages(doc, ROLES)
    require_type(doc, "system", (str, list), "a string or an array of text blocks")
    require_type(doc, "tools", (list,), "an array")
    return doc


def _check_blocks(blocks: list[Any], where: str) -> None:
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(
                f"{where}[{j}]: expected a content block object with a string `type`",
                param=f"{where}[{j}]",
            )


def stream_error_event(message: str, status: int) -> bytes:
    """The `error` event Anthropic sends when a stream fails after it has started."""
    doc = {
        "type": "error",
        "error": {"type": error_type_for_status("anthropic", status), "message": message},
    }
    return frame_event("error", orjson.dumps(doc))


def model_object(model_id: str, display_name: str, created_at: str) -> dict[str, Any]:
    """One model as `GET /v1/models/{id}` answers it."""
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": created_at}


def models_list(models: list[tuple[str, str, str]]) -> dict[str, Any]:
    """`GET /v1/models` in Anthropic's shape; `models` holds (id, display name, created at)."""
    data = [model_object(*entry) for entry in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def message_stream(message: dict[str, Any]) -> list[bytes]:
    """A whole Messages answer as the SSE events a stream of it would be (text, tool use and
    thinking blocks, each in one delta): how a cached or degraded answer is served to a
    client that asked for a stream."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    events = [frame_json_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message.get("content", [])):
        opening, deltas = _block_events(block)
        events.append(
            frame_json_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        for delta in deltas:
            events.append(
                frame_json_event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(
            frame_json_event("content_block_stop", {"type": "content_block_stop", "index": index})
        )
    delta_doc = {
        "type": "message_delta",
        "delta": {
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        },
        "usage": message.get("usage", {}),
    }
    events.append(frame_json_event("message_delta", delta_doc))
    events.append(frame_json_event("message_stop", {"type": "message_stop"}))
    return events


def _block_events(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A content block's `content_block_start` payload and its deltas."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": block.get("text", "")}]
    if kind == "tool_use":
        opening: dict[str, Any] = {
            "type": "tool_use",
            "id": block.get("id"),
            "name": block.get("name"),
            "input": {},
        }
        partial = orjson.dumps(block.get("input", {})).decode()
        return opening, [{"type": "input_json_delta", "partial_json": partial}]
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": block.get("thinking", "")}]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        return {"type": "thinking", "thinking": "", "signature": ""}, deltas
    return block, []


def frame_json_event(name: str, doc: Any) -> bytes:
    return frame_event(name, orjson.dumps(doc))


def tool_links(message: Any) -> tuple[list[str], list[str]]:
    """The tool call ids a message opens (an assistant's `tool_use` blocks) and closes (a
    user's `tool_result` blocks)."""
    opened: list[str] = []
    closed: list[str] = []
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return opened, closed
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_use" and isinstance(block.get("id"), str):
            opened.append(block["id"])
        elif kind == "tool_result" and isinstance(block.get("tool_use_id"), str):
            closed.append(block["tool_use_id"])
    return opened, closed


def latest_user_text(messages: Any) -> str:
    """The text of the last user message that is not only tool results ("" for none)."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                str(block.get("text", ""))
                for block in content
                if isinstance(block, dict) and block.get("type") == "text"
            ]
            if texts:
                return "\n".join(texts)
    return ""
