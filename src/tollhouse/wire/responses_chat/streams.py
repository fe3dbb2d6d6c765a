"""A Chat Completions chunk stream as a Responses event stream, event by event.

Fed the upstream's parsed chunks (`feed`), it returns the framed events to relay at once:
`response.created` and `response.in_progress` on the first chunk; the text as one `message`
item (`output_item.added`, `content_part.added`, then an `output_text.delta` per chunk);
each tool call as a `function_call` item with its argument deltas. The items are closed
(`*.done`, `output_item.done`) and `response.completed` (or `response.incomplete` for a
`length` finish) is sent with the whole response and its usage by `finish`, after the
usage chunk, which comes after the finish reason. An upstream error chunk becomes the
Responses `error` event, and the translator is closed.

For accounting it exposes, like the Messages/Chat translators, `usage` (the four Anthropic
counters), `usage_estimated` and `stop_reason` (Anthropic's vocabulary).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from tollhouse.errors import UpstreamError
from tollhouse.tokens.estimate import GeneratedText
from tollhouse.wire.anthropic_openai.stop_reasons import OPENAI_TO_ANTHROPIC_STOP
from tollhouse.wire.anthropic_openai.usage import openai_usage_to_anthropic
from tollhouse.wire.responses import EventWriter, message_item, response_object
from tollhouse.wire.sse import SSEEvent

from .answers import chat_usage_to_responses, function_call_item


class _Call:
    __slots__ = ("arguments", "call_id", "index", "item_id", "name")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.item_id = f"fc_{uuid.uuid4().hex}"
        self.call_id = call_id
        self.name = name
        self.arguments: list[str] = []


class ChatToResponsesStream:
    def __init__(self, request: dict[str, Any], response_id: str, model: str) -> None:
        self.request = request
        self.response_id = response_id
        self.model = model
        self.stop_reason: str | None = None
        self._reported: dict[str, int] | None = None
        self._writer = EventWriter()
        self._created = int(time.time())
        self._started = False
        self._closed = False
        self._outputs = 0
        self._text: list[str] | None = None
        self._text_index = 0
        self._text_id = f"msg_{uuid.uuid4().hex}"
        self._calls: dict[int, _Call] = {}
        self._finish: str | None = None
        self._chat_usage: Any = None
        self._generated = GeneratedText()

    @property
    def usage_estimated(self) -> bool:
        return self._reported is None

    @property
    def usage(self) -> dict[str, int]:
        if self._reported is not None:
            return self._reported
        return {
            "input_tokens": 0,
            "output_tokens": self._generated.tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._closed or not event.data.strip() or event.data.strip() == "[DONE]":
            return []
        try:
            doc = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The upstream stream sent an event that is not JSON.") from exc
        if not isinstance(doc, dict):
            return []
        out = self._open()
        if "error" in doc:
            error = doc["error"] if isinstance(doc["error"], dict) else {"message": doc["error"]}
            self._closed = True
            message = str(error.get("message") or "upstream error")
            out.append(self._writer.error(message, 502, str(error.get("type") or "server_error")))
            return out
        if isinstance(doc.get("usage"), dict):
            self._chat_usage = doc["usage"]
        for choice in doc.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.extend(self._text_delta(text))
            for call in delta.get("tool_calls") or ():
                out.extend(self._call_delta(call))
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
                self.stop_reason = OPENAI_TO_ANTHROPIC_STOP.get(self._finish, self._finish)
        return out

    def finish(self) -> list[bytes]:
        if self._closed:
            return []
        out = self._open()
        self._closed = True
        output: list[tuple[int, dict[str, Any]]] = []
        writer = self._writer
        if self._text is not None:
            item = message_item(self._text_id, "".join(self._text))
            part = item["content"][0]
            out.append(
                writer.event(
                    "response.output_text.done",
                    item_id=self._text_id,
                    output_index=self._text_index,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                )
            )
            out.append(
                writer.event(
                    "response.content_part.done",
                    item_id=self._text_id,
                    output_index=self._text_index,
                    content_index=0,
                    part=part,
                )
            )
            out.append(
                writer.event("response.output_item.done", output_index=self._text_index, item=item)
            )
            output.append((self._text_index, item))
        for call in self._calls.values():
            arguments = "".join(call.arguments)
            item = function_call_item(call.item_id, call.call_id, call.name, arguments)
            out.append(
                writer.event(
                    "response.function_call_arguments.done",
                    item_id=call.item_id,
                    output_index=call.index,
                    arguments=arguments,
                )
            )
            out.append(
                writer.event("response.output_item.done", output_index=call.index, item=item)
            )
            output.append((call.index, item))
        if isinstance(self._chat_usage, dict):
            self._reported = openai_usage_to_anthropic(self._chat_usage)
        cut = self._finish == "length"
        response = response_object(
            response_id=self.response_id,
            model=self.model,
            output=[item for _, item in sorted(output, key=lambda pair: pair[0])],
            usage=chat_usage_to_responses(self._chat_usage),
            request=self.request,
            status="incomplete" if cut else "completed",
            incomplete_reason="max_output_tokens" if cut else None,
            created_at=self._created,
        )
        out.append(writer.closing(response))
        return out

    def _open(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        response = response_object(
            response_id=self.response_id,
            model=self.model,
            output=[],
            usage=None,
            request=self.request,
            created_at=self._created,
        )
        return self._writer.opening(response)

    def _text_delta(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        writer = self._writer
        if self._text is None:
            self._text = []
            self._text_index = self._next_index()
            empty = message_item(self._text_id, "")
            out.append(
                writer.event(
                    "response.output_item.added",
                    output_index=self._text_index,
                    item={**empty, "status": "in_progress", "content": []},
                )
            )
            out.append(
                writer.event(
                    "response.content_part.added",
                    item_id=self._text_id,
                    output_index=self._text_index,
                    content_index=0,
                    part=empty["content"][0],
                )
            )
        self._text.append(text)
        self._generated.add(text)
        out.append(
            writer.event(
                "response.output_text.delta",
                item_id=self._text_id,
                output_index=self._text_index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return out

    def _call_delta(self, call: Any) -> list[bytes]:
        if not isinstance(call, dict):
            return []
        out: list[bytes] = []
        key = call.get("index", len(self._calls))
        function = call.get("function") or {}
        current = self._calls.get(key)
        if current is None:
            current = _Call(
                self._next_index(),
                str(call.get("id") or f"call_{uuid.uuid4().hex}"),
                str(function.get("name") or ""),
            )
            self._calls[key] = current
            item = function_call_item(current.item_id, current.call_id, current.name, "")
            out.append(
                self._writer.event(
                    "response.output_item.added",
                    output_index=current.index,
                    item={**item, "status": "in_progress"},
                )
            )
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            current.arguments.append(fragment)
            self._generated.add(fragment)
            out.append(
                self._writer.event(
                    "response.function_call_arguments.delta",
                    item_id=current.item_id,
                    output_index=current.index,
                    delta=fragment,
                )
            )
        return out

    def _next_index(self) -> int:
        index = self._outputs
        self._outputs += 1
        return index
