"""An `Answer` as the Anthropic Messages API sends it: one `message` object, or the stream
of events `message_start`, per block `content_block_start` / `content_block_delta`... /
`content_block_stop` (a `ping` after the first block starts), `message_delta` with the stop
reason and cumulative usage, `message_stop`.

Blocks come in the order thinking (deltas, then its `signature_delta`), text, tool_use
(`input_json_delta` pieces of the JSON input, starting with an empty one as the API does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tollhouse.errors import render_error_body
from tollhouse.simulator.answer import Answer
from tollhouse.simulator.ids import anthropic_tool_use_id
from tollhouse.simulator.response import StreamEvent, merge_usage
from tollhouse.simulator.text import stream_pieces
from tollhouse.tokens.estimate import text_tokens
from tollhouse.wire.sse import frame_event, frame_json

_JSON_PIECE = 10


@dataclass(frozen=True, slots=True)
class AnthropicUsage:
    """Input side of the usage; `input_tokens` excludes cache reads and writes, as the API's."""

    input_tokens: int
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    # Usage fields asked for (config `usage`, header `x-simulator-usage`): server-tool
    # counts, iterations, tier, geography, speed; merged over the simulated ones.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def doc(self, output_tokens: int) -> dict[str, Any]:
        return merge_usage(self._counts(output_tokens), self.extra)

    def _counts(self, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_5m + self.cache_write_1h,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_5m,
                "ephemeral_1h_input_tokens": self.cache_write_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }


def message_doc(
    message_id: str, model: str, answer: Answer, usage: AnthropicUsage
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(answer),
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": usage.doc(answer.output_tokens),
    }


def _message_start(message_id: str, model: str, usage: AnthropicUsage) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage.doc(1),
    }
    return {"type": "message_start", "message": message}


def _blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.thinking:
        blocks.append(
            {"type": "thinking", "thinking": answer.thinking, "signature": answer.signature}
        )
    if answer.text:
        blocks.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": anthropic_tool_use_id(),
                "name": call.name,
                "input": call.input if call.input is not None else {},
            }
        )
    return blocks


def stream_events(
    message_id: str, model: str, answer: Answer, usage: AnthropicUsage
) -> Iterator[StreamEvent]:
    """The stream's events, each framed only when it is asked for."""
    yield _event("message_start", _message_start(message_id, model, usage))
    for index, block in enumerate(_blocks(answer)):
        yield _event("content_block_start", _block_start(index, block))
        if index == 0:
            yield _event("ping", {"type": "ping"})
        yield from _block_deltas(index, block, answer)
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    final_usage = usage.doc(answer.output_tokens)
    del final_usage["cache_creation"], final_usage["service_tier"]
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
            "usage": final_usage,
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def _block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    if kind == "thinking":
        empty: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
    elif kind == "text":
        empty = {"type": "text", "text": ""}
    else:
        empty = {**block, "input": {}}
    return {"type": "content_block_start", "index": index, "content_block": empty}


def _block_deltas(index: int, block: dict[str, Any], answer: Answer) -> Iterator[StreamEvent]:
    kind = block["type"]
    if kind == "thinking":
        for piece in stream_pieces(block["thinking"]):
            yield _delta(index, {"type": "thinking_delta", "thinking": piece}, text_tokens(piece))
        yield _delta(index, {"type": "signature_delta", "signature": block["signature"]}, 0)
        return
    if kind == "text":
        for piece in stream_pieces(block["text"]):
            yield _delta(index, {"type": "text_delta", "text": piece}, text_tokens(piece))
        return
    arguments = answer.tool_calls[index - _tool_offset(answer)].arguments
    pieces = [""] + [arguments[i : i + _JSON_PIECE] for i in range(0, len(arguments), _JSON_PIECE)]
    for piece in pieces:
        yield _delta(index, {"type": "input_json_delta", "partial_json": piece}, text_tokens(piece))


def _tool_offset(answer: Answer) -> int:
    return int(bool(answer.thinking)) + int(bool(answer.text))


def _delta(index: int, delta: dict[str, Any], tokens: int) -> StreamEvent:
    doc = {"type": "content_block_delta", "index": index, "delta": delta}
    return StreamEvent(frame_json("content_block_delta", doc), tokens)


def _event(name: str, doc: dict[str, Any]) -> StreamEvent:
    return StreamEvent(frame_json(name, doc), 0)


def error_frame(message: str, error_type: str) -> bytes:
    """The `error` event that ends a stream which failed after it started."""
    return frame_event("error", render_error_body("anthropic", message, anthropic_type=error_type))
