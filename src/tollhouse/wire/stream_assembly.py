"""A client's stream put back together, as it passes, into the whole answer it would have
been in the same format: for the answer checks that read a whole answer
(stages/check/structured_stream.py), and for the response cache to keep a streamed answer and
serve it later to streaming and non-streaming clients alike (stages/response_cache/).

One class per format, fed every event of the stream in order (`feed`), with `size` about the
bytes of content it holds so far (for a caller to give up on an answer too large to keep)
and `answer` the whole answer once the stream completed, None before, or when it broke off
or failed. Anthropic Messages reuses the message assembly the conversations keep streamed
turns with; Chat Completions joins each choice's content, refusal and tool calls (by index,
arguments concatenated) as the SDK's accumulator does, into a whole `chat.completion`;
Responses takes the response its `response.completed` carries.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from tollhouse.accounting import Usage
from tollhouse.wire.anthropic_message_assembly import AnthropicMessageAssembly
from tollhouse.wire.sse import SSEEvent


class StreamAssembly(Protocol):
    @property
    def size(self) -> int:
        """About the bytes of content held so far."""
        ...

    def feed(self, event: SSEEvent) -> None: ...

    @property
    def answer(self) -> dict[str, Any] | None:
        """The whole answer once the stream completed; None before, or when it failed."""
        ...

    def answer_using(self, usage: Usage | None) -> dict[str, Any] | None:
        """`answer`, with `usage` (what accounting learnt of the stream) as its usage when
        the stream reported none (an OpenAI stream whose client did not ask for it)."""
        ...


def _decoded(event: SSEEvent) -> Any:
    try:
        return orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None


class AnthropicStreamAssembly:
    """A Messages stream as its message (`wire/anthropic_message_assembly.py` joins it)."""

    __slots__ = ("_assembly", "_failed", "_whole")

    def __init__(self) -> None:
        self._assembly = AnthropicMessageAssembly()
        self._failed = False
        self._whole = 0  # bytes of the events that bring whole documents (not deltas)

    @property
    def size(self) -> int:
        return self._assembly.size + self._whole

    def feed(self, event: SSEEvent) -> None:
        if event.event == "error":
            self._failed = True
        elif event.event != "ping":
            if event.event != "content_block_delta":
                # A block may start whole (a server tool's result): counted as it came.
                self._whole += len(event.data)
            self._assembly.feed(event.event, _decoded(event))

    @property
    def answer(self) -> dict[str, Any] | None:
        return None if self._failed else self._assembly.message

    def answer_using(self, usage: Usage | None) -> dict[str, Any] | None:
        return self.answer


class ChatStreamAssembly:
    """`chat.completion.chunk`s as the `chat.completion` they make: per choice, the role,
    content and refusal joined, tool calls joined by index (arguments concatenated), the
    finish reason; the usage chunk's usage. Complete once every choice has finished and
    `[DONE]` arrived."""

    __slots__ = ("_choices", "_done", "_failed", "_head", "_usage", "size")

    def __init__(self) -> None:
        self._head: dict[str, Any] | None = None
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, Any] | None = None
        self._done = False
        self._failed = False
        self.size = 0

    def feed(self, event: SSEEvent) -> None:
        if event.data.strip() == "[DONE]":
            self._done = True
            return
        chunk = _decoded(event)
        if not isinstance(chunk, dict) or "error" in chunk:
            self._failed = True
            return
        if self._head is None:
            self._head = {
                key: chunk[key]
                for key in ("id", "created", "model", "system_fingerprint", "service_tier")
                if key in chunk
            }
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for part in chunk.get("choices") or ():
            if isinstance(part, dict) and isinstance(part.get("index"), int):
                self._apply(part)

    def _apply(self, part: dict[str, Any]) -> None:
        choice = self._choices.setdefault(
            part["index"],
            {"message": {"role": "assistant", "content": None}, "finish_reason": None},
        )
        message = choice["message"]
        delta = part.get("delta") or {}
        for field in ("content", "refusal"):
            piece = delta.get(field)
            if isinstance(piece, str):
                message[field] = (message.get(field) or "") + piece
                self.size += len(piece)
        for fragment in delta.get("tool_calls") or ():
            if isinstance(fragment, dict):
                self._tool_call(message, fragment)
        if part.get("finish_reason") is not None:
            choice["finish_reason"] = part["finish_reason"]

    def _tool_call(self, message: dict[str, Any], fragment: dict[str, Any]) -> None:
        calls: list[dict[str, Any]] = message.setdefault("tool_calls", [])
        index = fragment.get("index", len(calls))
        while len(calls) <= index:
            calls.append(
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
        call = calls[index]
        if fragment.get("id"):
            call["id"] = fragment["id"]
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments
            self.size += len(arguments)

    @property
    def answer(self) -> dict[str, Any] | None:
        return self.answer_using(None)

    def answer_using(self, usage: Usage | None) -> dict[str, Any] | None:
        choices = self._choices
        finished = choices and all(c["finish_reason"] is not None for c in choices.values())
        if self._failed or not self._done or not finished or self._head is None:
            return None
        head = self._head
        return {
            "id": head.get("id", ""),
            "object": "chat.completion",
            "created": head.get("created", int(time.time())),
            "model": head.get("model", ""),
            **{k: head[k] for k in ("system_fingerprint", "service_tier") if k in head},
            "choices": [
                {"index": index, "logprobs": None, **choices[index]} for index in sorted(choices)
            ],
            "usage": self._usage or (openai_usage(usage) if usage is not None else None),
        }


def openai_usage(usage: Usage) -> dict[str, Any]:
    """`usage` as a Chat Completions `usage` object (prompt tokens include the cached ones)."""
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    prompt += usage.audio_input_tokens
    completion = usage.output_tokens + usage.audio_output_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "audio_tokens": usage.audio_input_tokens,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": usage.audio_output_tokens,
        },
    }


class ResponsesStreamAssembly:
    """A Responses stream's whole response: the one its `response.completed` carries (a
    cut or failed response, `response.incomplete` / `response.failed`, is not complete)."""

    __slots__ = ("_response", "size")

    def __init__(self) -> None:
        self._response: dict[str, Any] | None = None
        self.size = 0

    def feed(self, event: SSEEvent) -> None:
        if event.event not in ("response.completed", None):
            return  # every other event repeats part of what the completed response holds
        doc = _decoded(event)
        if isinstance(doc, dict) and doc.get("type") == "response.completed":
            response = doc.get("response")
            if isinstance(response, dict):
                self._response = response
                self.size = len(event.data)

    @property
    def answer(self) -> dict[str, Any] | None:
        return self._response

    def answer_using(self, usage: Usage | None) -> dict[str, Any] | None:
        return self._response
