"""The OpenAI Responses wire format (`POST /v1/responses`) as the gateway needs it:
validation of what the official SDKs send (only the fields a stage reads; the rest is
forwarded untouched to an upstream that speaks it), and what the gateway renders in it
itself: a whole response as its stream of typed events, error events, a static answer.

A response's stream is a sequence of typed events, each with a `sequence_number`:
`response.created`, `response.in_progress`, then per output item `response.output_item.added`,
its parts and deltas (`response.content_part.added`, `response.output_text.delta`,
`response.function_call_arguments.delta`, ...) and `response.output_item.done`, and last
`response.completed` (or `response.incomplete`) with the whole response and its usage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tollhouse.errors import BadRequest, error_type_for_status
from tollhouse.wire.request_body import decode_json_object, require_model, require_type
from tollhouse.wire.sse import frame_json

# The input items a request may hold (a bare `{role, content}` is a message).
ITEM_KINDS = frozenset(
    {"message", "function_call", "function_call_output", "reasoning", "item_reference"}
)


def parse_responses_request(body: bytes) -> dict[str, Any]:
    doc = decode_json_object(body)
    require_model(doc)
    items = doc.get("input")
    if items is None:
        raise BadRequest("input: field required", param="input")
    if not isinstance(items, str | list):
        raise BadRequest("input: expected a string or an array of input items", param="input")
    if isinstance(items, list):
        for i, item in enumerate(items):
            _check_item(item, f"input[{i}]")
    require_type(doc, "instructions", (str,), "a string")
    require_type(doc, "stream", (bool,), "a boolean")
    require_type(doc, "tools", (list,), "an array")
    require_type(doc, "text", (dict,), "an object")
    require_type(doc, "reasoning", (dict,), "an object")
    require_type(doc, "metadata", (dict,), "an object")
    require_type(doc, "store", (bool,), "a boolean")
    previous = require_type(doc, "previous_response_id", (str,), "a response id")
    if previous == "":
        raise BadRequest(
            "previous_response_id: expected a response id", param="previous_response_id"
        )
    limit = require_type(doc, "max_output_tokens", (int,), "an integer")
    if limit is not None and limit < 1:
        raise BadRequest(
            f"max_output_tokens: expected an integer >= 1, got {limit}", param="max_output_tokens"
        )
    for key in ("temperature", "top_p"):
        require_type(doc, key, (int, float), "a number")
    return doc


def _check_item(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: expected an input item object", param=where)
    kind = item.get("type", "message" if "role" in item else None)
    if kind not in ITEM_KINDS:
        raise BadRequest(
            f"{where}.type: expected one of {', '.join(sorted(ITEM_KINDS))}, got {kind!r}",
            param=f"{where}.type",
        )
    if kind == "message":
        if item.get("role") not in ("user", "assistant", "system", "developer"):
            raise BadRequest(
                f"{where}.role: expected user, assistant, system or developer",
                param=f"{where}.role",
            )
        if not isinstance(item.get("content"), str | list):
            raise BadRequest(
                f"{where}.content: expected a string or an array of content parts",
                param=f"{where}.content",
            )


def input_items(value: Any) -> list[dict[str, Any]]:
    """A request's `input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item for item in value or () if isinstance(item, dict)]


def response_object(
    *,
    response_id: str,
    model: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    request: dict[str, Any],
    status: str = "completed",
    incomplete_reason: str | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """A whole response, its request's settings echoed as OpenAI does."""
    text = request.get("text") if isinstance(request.get("text"), dict) else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": (
            {"reason": incomplete_reason} if incomplete_reason is not None else None
        ),
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": text or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation", "disabled"),
        "usage": usage,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def usage_object(
    input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


class EventWriter:
    """Frames the events of one response's stream, numbering them in order."""

    __slots__ = ("sequence",)

    def __init__(self) -> None:
        self.sequence = 0

    def event(self, kind: str, **fields: Any) -> bytes:
        doc = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return frame_json(kind, doc)

    def opening(self, response: dict[str, Any]) -> list[bytes]:
        """`response.created` and `response.in_progress` for a response just begun."""
        begun = {**response, "status": "in_progress", "output": [], "usage": None}
        return [
            self.event("response.created", response=begun),
            self.event("response.in_progress", response=begun),
        ]

    def item_events(self, index: int, item: dict[str, Any]) -> Iterator[bytes]:
        """The events that stream one whole output item at `index`."""
        kind = item.get("type")
        if kind == "message":
            yield self.event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            for part_index, part in enumerate(item.get("content") or ()):
                yield from self.text_part_events(index, str(item.get("id")), part_index, part)
        elif kind == "function_call":
            yield self.event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            arguments = str(item.get("arguments", ""))
            if arguments:
                yield self.event(
                    "response.function_call_arguments.delta",
                    item_id=item.get("id"),
                    output_index=index,
                    delta=arguments,
                )
            yield self.event(
                "response.function_call_arguments.done",
                item_id=item.get("id"),
                output_index=index,
                arguments=arguments,
            )
        else:
            yield self.event("response.output_item.added", output_index=index, item=item)
        yield self.event("response.output_item.done", output_index=index, item=item)

    def text_part_events(
        self, index: int, item_id: str, part_index: int, part: dict[str, Any]
    ) -> Iterator[bytes]:
        empty = {**part, "text": ""} if part.get("type") == "output_text" else part
        yield self.event(
            "response.content_part.added",
            item_id=item_id,
            output_index=index,
            content_index=part_index,
            part=empty,
        )
        if part.get("type") == "output_text" and part.get("text"):
            yield self.event(
                "response.output_text.delta",
                item_id=item_id,
                output_index=index,
                content_index=part_index,
                delta=part["text"],
                logprobs=[],
            )
        if part.get("type") == "output_text":
            yield self.event(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=part_index,
                text=part.get("text", ""),
                logprobs=[],
            )
        yield self.event(
            "response.content_part.done",
            item_id=item_id,
            output_index=index,
            content_index=part_index,
            part=part,
        )

    def closing(self, response: dict[str, Any]) -> bytes:
        """`response.completed`, or `response.incomplete` for a cut response."""
        kind = "response.incomplete" if response.get("status") == "incomplete" else None
        return self.event(kind or "response.completed", response=response)

    def error(self, message: str, status: int, code: str | None = None) -> bytes:
        return self.event(
            "error",
            code=code or error_type_for_status("openai", status),
            message=message,
            param=None,
        )


def response_stream(response: dict[str, Any]) -> list[bytes]:
    """A whole response as the events a stream of it would be."""
    writer = EventWriter()
    out = writer.opening(response)
    for index, item in enumerate(response.get("output") or ()):
        out.extend(writer.item_events(index, item))
    out.append(writer.closing(response))
    return out


def stream_error_event(message: str, status: int) -> bytes:
    """The `error` event a Responses stream ends with when it fails after it started."""
    return EventWriter().error(message, status)


def message_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
