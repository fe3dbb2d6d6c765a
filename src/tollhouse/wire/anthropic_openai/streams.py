"""Streaming responses between Messages SSE and Chat Completions chunk SSE.

A translator is fed the upstream's parsed events one at a time (`feed`) and returns the framed
bytes to relay to the client at once, so nothing waits for the end of the answer. The gateway
calls `finish` once when the upstream stream ended cleanly; a stream that breaks off is the
gateway's to end with an error event. An upstream error event is translated to the client
format's own error event, after which the translator is closed: no `[DONE]`, no
`message_stop`, and later events are ignored.

Both translators expose, for accounting partial streams, `usage` (the four Anthropic counters)
and `stop_reason` (Anthropic's vocabulary, None until the upstream said why it stopped).
Until the upstream reports output tokens, `usage["output_tokens"]` is the documented estimate
(`tollhouse.tokens.estimate.text_tokens`) of everything generated so far, thinking included.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from tollhouse.errors import UpstreamError
from tollhouse.tokens.estimate import GeneratedText
from tollhouse.wire.sse import SSEEvent, frame_event, frame_json

from .errors import translate_stream_error
from .responses import anthropic_id, openai_id
from .stop_reasons import anthropic_stop_reason, openai_finish_reason
from .usage import (
    anthropic_thinking_tokens,
    anthropic_usage_to_openai,
    anthropic_usage_totals,
    openai_reasoning_tokens,
    openai_usage_to_anthropic,
)

DONE = b"data: [DONE]\n\n"
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _load(event: SSEEvent) -> dict[str, Any] | None:
    if not event.data.strip():
        return None
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("The upstream stream sent an event that is not JSON.") from exc
    if not isinstance(doc, dict):
        raise UpstreamError("The upstream stream sent an event that is not a JSON object.")
    return doc


_BILLING_KEYS = ("server_tool_use", "service_tier", "inference_geo", "speed", "iterations")


class AnthropicToOpenAIStream:
    """Upstream Messages SSE → `chat.completion.chunk` SSE for an OpenAI client.

    The first chunk carries the assistant role; text and tool input arrive as content and
    `tool_calls` argument fragments (one tool call index per `tool_use` block, in order);
    thinking is dropped; the upstream `message_delta` becomes the chunk with `finish_reason`.
    With `include_usage` every chunk has `"usage": null` and `finish` adds the usage chunk
    (`choices: []`) before `[DONE]`, as OpenAI does for `stream_options.include_usage`.
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.stop_reason: str | None = None
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._reported = dict.fromkeys(_USAGE_KEYS, 0)
        self._output_final = False
        self._thinking_tokens: int | None = None
        self._generated = GeneratedText()
        self._tool_index_by_block: dict[int, int] = {}
        self._closed = False
        # The usage's billing facts (tier, geography, speed, server tools, iterations), for
        # the accounting only: an OpenAI client's usage chunk has no place for them.
        self._billing: dict[str, Any] = {}

    @property
    def usage_estimated(self) -> bool:
        """Whether the output count is still an estimate (no final count arrived)."""
        return not self._output_final

    @property
    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = dict(self._reported)
        if not self._output_final:
            estimate = self._generated.tokens
            usage["output_tokens"] = max(usage["output_tokens"], estimate)
        return {**usage, **self._billing}

    def _keep_billing(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key in _BILLING_KEYS:
                if usage.get(key) is not None:
                    self._billing[key] = usage[key]

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._closed:
            return []
        doc = _load(event)
        if doc is None:
            return []
        kind = doc.get("type")
        if kind == "error" or event.event == "error":
            self._closed = True
            return [frame_event(None, translate_stream_error(doc, "openai"))]
        if kind == "message_start":
            message = doc.get("message") or {}
            self._id = openai_id(message.get("id"))
            self._reported = anthropic_usage_totals(message.get("usage"))
            self._keep_billing(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(doc["index"], doc.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(doc["index"], doc.get("delta") or {})
        if kind == "message_delta":
            return self._message_delta(doc)
        return []

    def finish(self) -> list[bytes]:
        if self._closed:
            return []
        self._closed = True
        if not self.include_usage:
            return [DONE]
        usage_chunk = self._base()
        usage_chunk["choices"] = []
        usage_chunk["usage"] = anthropic_usage_to_openai(self.usage, self._thinking_tokens)
        return [frame_json(None, usage_chunk), DONE]

    def _block_start(self, index: int, block: dict[str, Any]) -> list[bytes]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            self._generated.add(block["text"])
            return [self._chunk({"content": block["text"]})]
        if kind == "tool_use":
            tool_index = len(self._tool_index_by_block)
            self._tool_index_by_block[index] = tool_index
            call = {
                "index": tool_index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text") or ""
            self._generated.add(text)
            return [self._chunk({"content": text})] if text else []
        if kind == "input_json_delta":
            fragment = delta.get("partial_json") or ""
            tool_index = self._tool_index_by_block.get(index)
            if tool_index is None or not fragment:
                return []
            self._generated.add(fragment)
            call = {"index": tool_index, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking_delta":
            self._generated.add(delta.get("thinking") or "")
        return []

    def _message_delta(self, doc: dict[str, Any]) -> list[bytes]:
        self.stop_reason = (doc.get("delta") or {}).get("stop_reason")
        usage = doc.get("usage") or {}
        # message_delta counts are cumulative totals: they replace, and absent ones keep
        # the message_start value.
        for key in _USAGE_KEYS:
            if isinstance(usage.get(key), int):
                self._reported[key] = usage[key]
        self._output_final = True
        self._thinking_tokens = anthropic_thinking_tokens(usage)
        self._keep_billing(usage)
        return [self._chunk({}, openai_finish_reason(self.stop_reason))]

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
            "system_fingerprint": None,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = self._base()
        chunk["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]
        if self.include_usage:
            chunk["usage"] = None
        return frame_json(None, chunk)


class OpenAIToAnthropicStream:
    """Upstream `chat.completion.chunk` SSE → Messages SSE for an Anthropic client.

    `message_start` goes out with the first upstream chunk, its `input_tokens` being the
    caller's estimate until the upstream's usage arrives. Text opens a text block, each tool
    call (told apart by its `index`, or by its `id` on servers that omit the index) closes the
    open block and opens a `tool_use` block whose argument fragments become
    `input_json_delta`s. A refusal is streamed as text and stops with `refusal`, as in the
    whole-response translation. The open block closes at `finish_reason`; `message_delta` (stop
    reason and usage) and `message_stop` wait for the usage chunk OpenAI sends after the
    finish chunk, or for `[DONE]` / `finish` when none comes.
    """

    def __init__(self, model: str, input_tokens_estimate: int) -> None:
        self.model = model
        self.stop_reason: str | None = None
        self._input_estimate = input_tokens_estimate
        self._reported: dict[str, int] | None = None
        self._thinking_tokens: int | None = None
        self._generated = GeneratedText()
        self._started = False
        self._finish_seen = False
        self._refused = False
        self._closed = False
        self._block_count = 0
        self._open_block: int | None = None
        self._open_is_text = False
        self._block_by_tool: dict[Any, int] = {}
        self._last_tool: Any = None

    @property
    def usage_estimated(self) -> bool:
        """Whether the usage is still an estimate (the upstream's usage chunk never came)."""
        return self._reported is None

    @property
    def usage(self) -> dict[str, int]:
        if self._reported is not None:
            return dict(self._reported)
        return {
            "input_tokens": self._input_estimate,
            "output_tokens": self._generated.tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._closed:
            return []
        if event.data.strip() == "[DONE]":
            return self._end()
        doc = _load(event)
        if doc is None:
            return []
        if doc.get("error") or event.event == "error":
            self._closed = True
            return [frame_event("error", translate_stream_error(doc, "anthropic"))]
        out: list[bytes] = [] if self._started else [self._message_start(doc.get("id"))]
        for choice in doc.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            out += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
                self.stop_reason = (
                    "refusal" if self._refused else anthropic_stop_reason(finish_reason)
                )
                self._finish_seen = True
                out += self._close_block()
        if doc.get("usage"):
            self._reported = openai_usage_to_anthropic(doc["usage"])
            self._thinking_tokens = openai_reasoning_tokens(doc["usage"])
            if self._finish_seen:
                out += self._end()
        return out

    def finish(self) -> list[bytes]:
        return self._end()

    def _message_start(self, upstream_id: Any) -> bytes:
        self._started = True
        message_id = anthropic_id(upstream_id) if upstream_id else f"msg_{uuid.uuid4().hex}"
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self._input_estimate,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return frame_json("message_start", {"type": "message_start", "message": message})

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        if delta.get("refusal"):
            self._refused = True
        text = delta.get("content") or delta.get("refusal")
        if text:
            if not self._open_is_text:
                out += self._open({"type": "text", "text": ""})
                self._open_is_text = True
            self._generated.add(text)
            out.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or []:
            out += self._tool_call_delta(call)
        return out

    def _tool_call_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        key = call.get("index")
        if key is None:
            key = call.get("id") or self._last_tool
        self._last_tool = key
        function = call.get("function") or {}
        if key not in self._block_by_tool:
            out += self._open(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{uuid.uuid4().hex}",
                    "name": function.get("name") or "",
                    "input": {},
                }
            )
            self._block_by_tool[key] = self._block_count - 1
        fragment = function.get("arguments")
        if fragment:
            self._generated.add(fragment)
            delta = {"type": "input_json_delta", "partial_json": fragment}
            out.append(self._block_delta(delta, self._block_by_tool[key]))
        return out

    def _open(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close_block()
        self._open_block = self._block_count
        self._block_count += 1
        start = {"type": "content_block_start", "index": self._open_block, "content_block": block}
        out.append(frame_json("content_block_start", start))
        return out

    def _block_delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        block = self._open_block if index is None else index
        doc = {"type": "content_block_delta", "index": block, "delta": delta}
        return frame_json("content_block_delta", doc)

    def _close_block(self) -> list[bytes]:
        if self._open_block is None:
            return []
        doc = {"type": "content_block_stop", "index": self._open_block}
        self._open_block = None
        self._open_is_text = False
        return [frame_json("content_block_stop", doc)]

    def _end(self) -> list[bytes]:
        if self._closed:
            return []
        self._closed = True
        out: list[bytes] = [] if self._started else [self._message_start(None)]
        out += self._close_block()
        usage: dict[str, Any] = (
            dict(self._reported)
            if self._reported is not None
            else {"output_tokens": self.usage["output_tokens"]}
        )
        if self._thinking_tokens is not None:
            usage["output_tokens_details"] = {"thinking_tokens": self._thinking_tokens}
        delta = {"stop_reason": self.stop_reason, "stop_sequence": None}
        message_delta = {"type": "message_delta", "delta": delta, "usage": usage}
        out.append(frame_json("message_delta", message_delta))
        out.append(frame_json("message_stop", {"type": "message_stop"}))
        return out
