"""A client's stream put back together into the whole answer it would have been, in the same
format, for the answer checks that read a whole answer (stages/check/structured_stream.py).

Fed every event of the stream in order; `answer` is the whole answer once the stream ended
normally, None before (or when it broke off). Anthropic Messages reuses the message
assembly the conversations keep streamed turns with; Chat Completions joins the first
choice's content and each tool call's arguments, by index, as the SDK's accumulator does.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from tollhouse.wire.anthropic_message_assembly import AnthropicMessageAssembly
from tollhouse.wire.sse import SSEEvent


class StreamAssembly(Protocol):
    def feed(self, event: SSEEvent) -> None: ...

    @property
    def answer(self) -> dict[str, Any] | None: ...


class AnthropicStreamAssembly:
    __slots__ = ("_message",)

    def __init__(self) -> None:
        self._message = AnthropicMessageAssembly()

    def feed(self, event: SSEEvent) -> None:
        try:
            doc = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return
        self._message.feed(event.event, doc)

    @property
    def answer(self) -> dict[str, Any] | None:
        return self._message.message


class ChatStreamAssembly:
    __slots__ = ("_calls", "_done", "_finish", "_text")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._done = False

    def feed(self, event: SSEEvent) -> None:
        if event.data.strip() == "[DONE]":
            self._done = True
            return
        try:
            doc = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return
        choices = doc.get("choices") if isinstance(doc, dict) else None
        for choice in choices or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if isinstance(choice.get("finish_reason"), str):
                self._finish = choice["finish_reason"]
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._take(delta)

    def _take(self, delta: dict[str, Any]) -> None:
        if isinstance(delta.get("content"), str):
            self._text.append(delta["content"])
        for part in delta.get("tool_calls") or ():
            if not isinstance(part, dict):
                continue
            call = self._calls.setdefault(
                int(part.get("index", 0)),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            if isinstance(part.get("id"), str):
                call["id"] = part["id"]
            function = part.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    call["function"]["name"] += function["name"]
                if isinstance(function.get("arguments"), str):
                    call["function"]["arguments"] += function["arguments"]

    @property
    def answer(self) -> dict[str, Any] | None:
        if not self._done:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) or None}
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        return {"choices": [{"index": 0, "message": message, "finish_reason": self._finish}]}
