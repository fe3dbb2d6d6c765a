"""The wire formats as objects the stages ask, so that no stage branches on the format.

`FORMATS[name]` is the one object per format. A stage holding a call asks `call.wire` (the
client's format); one holding an upstream answer asks the format of the deployment's
provider. Each object knows its own request fields (the `max_tokens` field, the end user,
whether a stream's usage was asked for), how it frames what the gateway itself renders
(stream error events, a whole answer replayed as a stream, a static answer), how it reads an
answer (stop reason, usage, error bodies, a stream's first events), and how to translate
from another format (requests, whole answers, streams; the translators themselves live in
`wire/anthropic_openai/`, `wire/responses_chat/` and `wire/responses_anthropic.py`, one per
pair). The formats are Anthropic Messages, OpenAI Chat Completions and OpenAI Responses.

Which format an upstream is sent a call in is `upstream_format`: the client's own when the
upstream speaks it (passed through), else the upstream's native one (translated).
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from tollhouse.accounting import (
    AnthropicStreamUsage,
    OpenAIStreamUsage,
    ResponsesStreamUsage,
    Usage,
    responses_stop_reason,
    usage_from_anthropic,
    usage_from_openai,
    usage_from_responses,
)
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.types import WireFormat
from tollhouse.wire import answer_content, request_edits
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire
from tollhouse.wire import responses as responses_wire
from tollhouse.wire.answer_content import AnswerContent
from tollhouse.wire.anthropic_openai import (
    OPENAI_TO_ANTHROPIC_STOP,
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
)
from tollhouse.wire.responses_anthropic import (
    AnthropicToResponsesStream,
    anthropic_answer_to_response,
    responses_request_to_anthropic,
)
from tollhouse.wire.responses_chat import (
    ChatToResponsesStream,
    chat_answer_to_response,
    responses_request_to_chat,
)
from tollhouse.wire.sse import SSEEvent
from tollhouse.wire.stream_assembly import (
    AnthropicStreamAssembly,
    ChatStreamAssembly,
    ResponsesStreamAssembly,
    StreamAssembly,
)

StreamUsage = AnthropicStreamUsage | OpenAIStreamUsage | ResponsesStreamUsage
StreamTranslator = (
    AnthropicToOpenAIStream
    | OpenAIToAnthropicStream
    | ChatToResponsesStream
    | AnthropicToResponsesStream
)
RequestTranslator = Callable[[dict[str, Any], str], dict[str, Any]]
_OPENAI_CONTENT = re.compile(
    rb'"(?:content|refusal)": ?"[^"]|"tool_calls": ?\[|"finish_reason": ?"|data: \[DONE\]'
)
# A stream event's meaning before any content: True, content has started; a str, the
# upstream's error type; None, still the preamble.
EventVerdict = bool | str | None


@dataclass(frozen=True, slots=True)
class AnswerFacts:
    """What a whole answer says about itself: why it stopped (in Anthropic's vocabulary)
    and what it used."""

    stop_reason: str | None = None
    usage: Usage | None = None


class Format(ABC):
    """One wire format. Requests and answers are the decoded JSON documents (dicts)."""

    name: WireFormat
    # Byte markers of a stream's events that carry usage, a stop reason or an error, and of
    # an error event alone (see `stages/dispatch/stream_markers.py`).
    accounting_markers: tuple[bytes, ...]
    error_marker: bytes
    # The response header that carries the gateway's request id, where this format's SDK
    # reads it (`_request_id` on its answers and errors).
    request_id_header: str
    # Client headers that carry meaning for an upstream of this format. Credentials are never
    # among them: the provider adapter adds the server's own.
    passthrough_headers: tuple[str, ...]
    # The upstream path that serves each endpoint a client may call.
    upstream_paths: Mapping[str, str]
    # Whether prompt caching is the client's to ask for, with `cache_control` breakpoints
    # (stages/dispatch/cache_breakpoints.py); otherwise the provider caches prefixes itself.
    places_cache_breakpoints: bool = False

    # Requests ---------------------------------------------------------------------------

    @abstractmethod
    def max_tokens_field(self, body: Mapping[str, Any]) -> str:
        """The field that bounds the answer's length in a request of this format."""

    @abstractmethod
    def end_user(self, body: Mapping[str, Any]) -> str | None:
        """The end user a request names, if any."""

    @abstractmethod
    def wants_stream_usage(self, body: Mapping[str, Any]) -> bool:
        """Whether a client's streamed request asked to be told the usage."""

    @abstractmethod
    def usage_request_changes(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Changes to a streamed request of this format, sent to an upstream of this format,
        that make its stream report the usage the gateway prices; None when none are needed.
        The client, which did not ask, is kept from seeing that usage."""

    # A request of another format translated into this one, by the source format's name.
    requests_from: Mapping[str, RequestTranslator] = {}

    def request_from(
        self, source: WireFormat, body: dict[str, Any], upstream_model: str
    ) -> dict[str, Any]:
        """A request of format `source`, translated into this one (ValueError: no pair)."""
        translate = self.requests_from.get(source)
        if translate is None:
            raise ValueError(f"no translation of {source} requests to {self.name}")
        return translate(body, upstream_model)

    @abstractmethod
    def with_system(
        self, body: dict[str, Any], mode: request_edits.SystemMode, text: str
    ) -> dict[str, Any]:
        """`body` with its system prompt replaced by `text`, or `text` put before or after."""

    @abstractmethod
    def with_tools(self, body: dict[str, Any], tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """`body` offering `tools` (Anthropic's tool shape) instead of its own."""

    @abstractmethod
    def with_cache_breakpoints(self, body: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
        """`body` with prompt-cache breakpoints at `places` (system, tools, last_message)."""

    # Conversations ----------------------------------------------------------------------

    @abstractmethod
    def conversation(self, body: Mapping[str, Any]) -> tuple[int, list[Any]] | None:
        """A request's conversation (its `messages`) and how many of its first messages are
        the system prompt; None when its history is no list of messages of this format."""

    def tool_links(self, message: Any) -> tuple[list[str], list[str]]:
        """The tool call ids a message of the conversation opens and closes: a call and its
        result must be sent together or not at all."""
        return [], []

    def with_conversation(self, body: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        """`body` with `messages` as its conversation, as a new document."""
        return {**body, "messages": messages}

    def user_message(self, text: str) -> dict[str, Any]:
        """A user message holding `text`."""
        return {"role": "user", "content": text}

    @abstractmethod
    def latest_user_text(self, body: Mapping[str, Any]) -> str:
        """The text of the request's last user turn ("" when it has none)."""

    @abstractmethod
    def tool_names(self, body: Mapping[str, Any]) -> list[str]:
        """The names of the tools a request offers."""

    # Answers ----------------------------------------------------------------------------

    @abstractmethod
    def answer_facts(self, body: bytes) -> AnswerFacts:
        """Stop reason and usage of a whole answer of this format (empty when unreadable)."""

    @abstractmethod
    def stop_reason(self, reason: object) -> str | None:
        """A stop reason of this format, in Anthropic's vocabulary."""

    @abstractmethod
    def stream_usage(self) -> StreamUsage:
        """A fresh observer of a stream of this format's usage and stop reason."""

    @abstractmethod
    def is_error_body(self, body: bytes) -> bool:
        """Whether `body` is an error body in this format's own shape."""

    @abstractmethod
    def classify_event(self, event: SSEEvent) -> EventVerdict:
        """What an event of this format's stream means while its preamble is held."""

    @abstractmethod
    def content_started(self, events: bytes) -> bool:
        """Whether a run of complete events of this format shows the user something."""

    @abstractmethod
    def answer_from(
        self, source: WireFormat, doc: dict[str, Any], body: dict[str, Any], model: str
    ) -> dict[str, Any]:
        """A whole answer of format `source`, translated into this one, for a client
        request `body` of this format (ValueError: no such pair)."""

    @abstractmethod
    def stream_from(self, source: WireFormat, body: dict[str, Any], model: str) -> StreamTranslator:
        """A translator of a `source` stream into this one, for a client request `body` of
        this format (ValueError: no such pair)."""

    # What the gateway renders -----------------------------------------------------------

    @abstractmethod
    def stream_error_event(self, message: str, status: int) -> bytes:
        """The event a stream of this format ends with when it fails after it started."""

    @abstractmethod
    def replay_as_stream(self, answer: dict[str, Any], body: Mapping[str, Any]) -> list[bytes]:
        """A whole answer as the events a stream of it would be, for request `body`."""

    @abstractmethod
    def static_answer(self, text: str, model: str, request_id: str) -> dict[str, Any]:
        """A whole answer holding `text`, with no usage: the gateway's own answer."""

    # What an answer says, for the answer checks (stages/check/structured_output.py) ------

    # Where a stream of this format ends normally: an answer check that fails once the rest
    # has been relayed puts its error event in place of what starts here.
    stream_end_marker: bytes = b""

    def answer_content(self, doc: Mapping[str, Any]) -> AnswerContent | None:
        """The text and tool calls of a whole answer of this format; None when the format's
        answers are not read (the checks that need them can't serve it)."""
        return None

    def tool_schemas(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The input schema of each tool a request of this format offers, by name."""
        return {}

    def requested_schema(self, body: Mapping[str, Any]) -> Any:
        """The JSON Schema a request of this format asks its answer to match, or None."""
        return None

    def with_correction(
        self,
        body: dict[str, Any],
        doc: Mapping[str, Any],
        feedback: str,
        tool_errors: Mapping[str, str],
    ) -> dict[str, Any]:
        """`body` followed by answer `doc` and the turns that tell the model what was wrong:
        `tool_errors` by tool call id, then `feedback` as the user's turn."""
        raise NotImplementedError(f"no corrective turns in {self.name} requests")

    def stream_assembly(self) -> StreamAssembly | None:
        """A fresh assembly of a stream of this format into its whole answer, or None."""
        return None


class AnthropicFormat(Format):
    name: WireFormat = "anthropic"
    places_cache_breakpoints = True
    accounting_markers = (b"event: message_start", b"event: message_delta", b"event: error")
    error_marker = b"event: error"
    request_id_header = "request-id"
    passthrough_headers = ("anthropic-version", "anthropic-beta")
    upstream_paths: Mapping[str, str] = {
        "messages": "/v1/messages",
        "chat_completions": "/v1/messages",
        "responses": "/v1/messages",
        "count_tokens": "/v1/messages/count_tokens",
    }
    requests_from: Mapping[str, RequestTranslator] = {
        "openai": openai_request_to_anthropic,
        "responses": responses_request_to_anthropic,
    }
    _content_markers = (
        b"event: content_block_delta",
        b"event: message_delta",
        b"event: message_stop",
    )
    _preamble = frozenset({"message_start", "ping", "content_block_start"})

    def max_tokens_field(self, body: Mapping[str, Any]) -> str:
        return "max_tokens"

    def end_user(self, body: Mapping[str, Any]) -> str | None:
        metadata = body.get("metadata")
        value = metadata.get("user_id") if isinstance(metadata, dict) else None
        return value if isinstance(value, str) and value else None

    def wants_stream_usage(self, body: Mapping[str, Any]) -> bool:
        return True  # `message_start` and `message_delta` always carry it

    def usage_request_changes(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        return None

    def with_system(
        self, body: dict[str, Any], mode: request_edits.SystemMode, text: str
    ) -> dict[str, Any]:
        return request_edits.anthropic_system(body, mode, text)

    def with_tools(self, body: dict[str, Any], tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return request_edits.anthropic_tools(body, tools)

    def with_cache_breakpoints(self, body: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
        return request_edits.anthropic_cache_breakpoints(body, places)

    def conversation(self, body: Mapping[str, Any]) -> tuple[int, list[Any]] | None:
        messages = body.get("messages")
        return (0, messages) if isinstance(messages, list) else None

    def tool_links(self, message: Any) -> tuple[list[str], list[str]]:
        return anthropic_wire.tool_links(message)

    def latest_user_text(self, body: Mapping[str, Any]) -> str:
        return anthropic_wire.latest_user_text(body.get("messages"))

    def tool_names(self, body: Mapping[str, Any]) -> list[str]:
        return _tool_names(body, lambda tool: tool.get("name"))

    def answer_facts(self, body: bytes) -> AnswerFacts:
        doc = _json_object(body)
        if doc is None:
            return AnswerFacts()
        usage_doc = doc.get("usage")
        reason = doc.get("stop_reason")
        usage = usage_from_anthropic(usage_doc) if isinstance(usage_doc, dict) else None
        return AnswerFacts(reason if isinstance(reason, str) else None, usage)

    def stop_reason(self, reason: object) -> str | None:
        return reason if isinstance(reason, str) else None

    def stream_usage(self) -> StreamUsage:
        return AnthropicStreamUsage()

    def is_error_body(self, body: bytes) -> bool:
        doc = _json_object(body)
        return doc is not None and doc.get("type") == "error" and isinstance(doc.get("error"), dict)

    def classify_event(self, event: SSEEvent) -> EventVerdict:
        if event.event == "error":
            return _error_type(event)
        return True if event.event not in self._preamble else None

    def content_started(self, events: bytes) -> bool:
        return any(marker in events for marker in self._content_markers)

    def answer_from(
        self, source: WireFormat, doc: dict[str, Any], body: dict[str, Any], model: str
    ) -> dict[str, Any]:
        _require_pair(source, "openai", self.name)
        return openai_response_to_anthropic(doc, model)

    def stream_from(self, source: WireFormat, body: dict[str, Any], model: str) -> StreamTranslator:
        _require_pair(source, "openai", self.name)
        return OpenAIToAnthropicStream(model, request_input_tokens(body))

    def stream_error_event(self, message: str, status: int) -> bytes:
        return anthropic_wire.stream_error_event(message, status)

    def replay_as_stream(self, answer: dict[str, Any], body: Mapping[str, Any]) -> list[bytes]:
        return anthropic_wire.message_stream(answer)

    stream_end_marker = b"event: message_stop"

    def answer_content(self, doc: Mapping[str, Any]) -> AnswerContent | None:
        return answer_content.anthropic_answer_content(doc)

    def tool_schemas(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return answer_content.anthropic_tool_schemas(body)

    def requested_schema(self, body: Mapping[str, Any]) -> Any:
        return answer_content.anthropic_requested_schema(body)

    def with_correction(
        self,
        body: dict[str, Any],
        doc: Mapping[str, Any],
        feedback: str,
        tool_errors: Mapping[str, str],
    ) -> dict[str, Any]:
        return answer_content.anthropic_with_correction(body, doc, feedback, tool_errors)

    def stream_assembly(self) -> StreamAssembly | None:
        return AnthropicStreamAssembly()

    def static_answer(self, text: str, model: str, request_id: str) -> dict[str, Any]:
        return {
            "id": f"msg_degraded_{request_id}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }


class OpenAIFormat(Format):
    name: WireFormat = "openai"
    accounting_markers = (
        b'"usage":{',
        b'"usage": {',
        b'"finish_reason":"',
        b'"finish_reason": "',
        b'"error"',
    )
    error_marker = b'"error"'
    request_id_header = "x-request-id"
    passthrough_headers = ()
    upstream_paths: Mapping[str, str] = {
        "chat_completions": "/chat/completions",
        "messages": "/chat/completions",
        "embeddings": "/embeddings",
        "responses": "/chat/completions",
    }
    requests_from: Mapping[str, RequestTranslator] = {
        "anthropic": anthropic_request_to_openai,
        "responses": responses_request_to_chat,
    }

    def max_tokens_field(self, body: Mapping[str, Any]) -> str:
        return "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"

    def end_user(self, body: Mapping[str, Any]) -> str | None:
        value = body.get("user")
        return value if isinstance(value, str) and value else None

    def wants_stream_usage(self, body: Mapping[str, Any]) -> bool:
        options = body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def usage_request_changes(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.wants_stream_usage(body):
            return None
        options = body.get("stream_options")
        return {"stream_options": {**(options or {}), "include_usage": True}}

    def with_system(
        self, body: dict[str, Any], mode: request_edits.SystemMode, text: str
    ) -> dict[str, Any]:
        return request_edits.openai_system(body, mode, text)

    def with_tools(self, body: dict[str, Any], tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return request_edits.openai_tools(body, tools)

    def with_cache_breakpoints(self, body: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
        # OpenAI caches prompt prefixes by itself; its format has no breakpoints to place.
        return body

    def conversation(self, body: Mapping[str, Any]) -> tuple[int, list[Any]] | None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return None
        pinned = 0
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in openai_wire.SYSTEM_ROLES:
                break
            pinned += 1
        return pinned, messages

    def tool_links(self, message: Any) -> tuple[list[str], list[str]]:
        return openai_wire.tool_links(message)

    def latest_user_text(self, body: Mapping[str, Any]) -> str:
        return openai_wire.latest_user_text(body.get("messages"))

    def tool_names(self, body: Mapping[str, Any]) -> list[str]:
        return _tool_names(body, _chat_tool_name)

    def answer_facts(self, body: bytes) -> AnswerFacts:
        doc = _json_object(body)
        if doc is None:
            return AnswerFacts()
        usage_doc = doc.get("usage")
        usage = None
        if isinstance(usage_doc, dict):
            usage = usage_from_openai(usage_doc, service_tier=doc.get("service_tier"))
        choices = doc.get("choices")
        reason = None
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            reason = self.stop_reason(choices[0].get("finish_reason"))
            message = choices[0].get("message")
            if isinstance(message, dict) and message.get("refusal"):
                reason = "refusal"  # a structured-output refusal stops as `stop`
        return AnswerFacts(reason, usage)

    def stop_reason(self, reason: object) -> str | None:
        if not isinstance(reason, str):
            return None
        return OPENAI_TO_ANTHROPIC_STOP.get(reason, reason)

    def stream_usage(self) -> StreamUsage:
        return OpenAIStreamUsage()

    def is_error_body(self, body: bytes) -> bool:
        doc = _json_object(body)
        error = doc.get("error") if doc is not None else None
        return isinstance(error, dict) and "message" in error

    def classify_event(self, event: SSEEvent) -> EventVerdict:
        if event.data.strip() == "[DONE]":
            return True
        try:
            doc = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(doc, dict):
            return True
        if "error" in doc:
            return _error_type(event)
        for choice in doc.get("choices") or ():
            delta = choice.get("delta") or {} if isinstance(choice, dict) else {}
            if delta.get("content") or delta.get("tool_calls") or choice.get("finish_reason"):
                return True
            if delta.get("refusal"):
                return True
        return True if doc.get("usage") else None

    def content_started(self, events: bytes) -> bool:
        return _OPENAI_CONTENT.search(events) is not None

    def answer_from(
        self, source: WireFormat, doc: dict[str, Any], body: dict[str, Any], model: str
    ) -> dict[str, Any]:
        _require_pair(source, "anthropic", self.name)
        return anthropic_response_to_openai(doc, model)

    def stream_from(self, source: WireFormat, body: dict[str, Any], model: str) -> StreamTranslator:
        _require_pair(source, "anthropic", self.name)
        return AnthropicToOpenAIStream(model, self.wants_stream_usage(body))

    def stream_error_event(self, message: str, status: int) -> bytes:
        return openai_wire.stream_error_event(message, status)

    def replay_as_stream(self, answer: dict[str, Any], body: Mapping[str, Any]) -> list[bytes]:
        return openai_wire.completion_stream(answer, self.wants_stream_usage(body))

    stream_end_marker = b"data: [DONE]"

    def answer_content(self, doc: Mapping[str, Any]) -> AnswerContent | None:
        return answer_content.openai_answer_content(doc)

    def tool_schemas(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return answer_content.openai_tool_schemas(body)

    def requested_schema(self, body: Mapping[str, Any]) -> Any:
        return answer_content.openai_requested_schema(body)

    def with_correction(
        self,
        body: dict[str, Any],
        doc: Mapping[str, Any],
        feedback: str,
        tool_errors: Mapping[str, str],
    ) -> dict[str, Any]:
        return answer_content.openai_with_correction(body, doc, feedback, tool_errors)

    def stream_assembly(self) -> StreamAssembly | None:
        return ChatStreamAssembly()

    def static_answer(self, text: str, model: str, request_id: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-degraded-{request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }


class ResponsesFormat(Format):
    """OpenAI Responses: a client format of its own, passed through to upstreams that speak
    it (OpenAI, the simulator), translated to Chat Completions or Messages for the others."""

    name: WireFormat = "responses"
    accounting_markers = (
        b"event: response.completed",
        b"event: response.incomplete",
        b"event: response.failed",
        b"event: error",
    )
    error_marker = b"event: error"
    request_id_header = "x-request-id"
    passthrough_headers = ()
    upstream_paths: Mapping[str, str] = {"responses": "/responses"}
    _content_markers = (
        b"event: response.output_text.delta",
        b"event: response.function_call_arguments.delta",
        b"event: response.output_item.done",
        b"event: response.completed",
        b"event: response.incomplete",
    )
    _preamble = frozenset(
        {
            "response.created",
            "response.in_progress",
            "response.queued",
            "response.output_item.added",
        }
    )
    _stops: Mapping[str, str] = {
        "completed": "end_turn",
        "function_call": "tool_use",
        "max_output_tokens": "max_tokens",
        "content_filter": "refusal",
    }

    def max_tokens_field(self, body: Mapping[str, Any]) -> str:
        return "max_output_tokens"

    def with_system(
        self, body: dict[str, Any], mode: request_edits.SystemMode, text: str
    ) -> dict[str, Any]:
        current = body.get("instructions")
        current_text = current if isinstance(current, str) else ""
        if mode == "replace" or not current_text:
            return {**body, "instructions": text}
        joined = f"{text}\n\n{current_text}" if mode == "prepend" else f"{current_text}\n\n{text}"
        return {**body, "instructions": joined}

    def with_tools(self, body: dict[str, Any], tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
        # Responses function tools are Chat's with the function's fields at the top.
        chat = request_edits.openai_tools({}, tools)["tools"]
        return {**body, "tools": [{"type": "function", **tool["function"]} for tool in chat]}

    def with_cache_breakpoints(self, body: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
        # OpenAI caches prompt prefixes by itself; its format has no breakpoints to place.
        return body

    def conversation(self, body: Mapping[str, Any]) -> tuple[int, list[Any]] | None:
        # Its history is `input` items (or `previous_response_id`, held upstream): not bounded.
        return None

    def latest_user_text(self, body: Mapping[str, Any]) -> str:
        items = body.get("input")
        if isinstance(items, str):
            return items
        messages = [
            item
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and item.get("type", "message") == "message"
        ]
        for message in reversed(messages):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "input_text"
                )
        return ""

    def tool_names(self, body: Mapping[str, Any]) -> list[str]:
        return _tool_names(body, lambda tool: tool.get("name"))

    def end_user(self, body: Mapping[str, Any]) -> str | None:
        for key in ("safety_identifier", "user"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def wants_stream_usage(self, body: Mapping[str, Any]) -> bool:
        return True  # `response.completed` always carries it

    def usage_request_changes(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        return None

    def answer_facts(self, body: bytes) -> AnswerFacts:
        doc = _json_object(body)
        if doc is None:
            return AnswerFacts()
        usage_doc = doc.get("usage")
        usage = usage_from_responses(usage_doc) if isinstance(usage_doc, dict) else None
        return AnswerFacts(self.stop_reason(responses_stop_reason(doc)), usage)

    def stop_reason(self, reason: object) -> str | None:
        if not isinstance(reason, str):
            return None
        return self._stops.get(reason, reason)

    def stream_usage(self) -> StreamUsage:
        return ResponsesStreamUsage()

    def is_error_body(self, body: bytes) -> bool:
        return OPENAI.is_error_body(body)

    def classify_event(self, event: SSEEvent) -> EventVerdict:
        kind = event.event
        if kind is None:
            try:
                doc = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                return True
            kind = doc.get("type") if isinstance(doc, dict) else None
        if kind in ("error", "response.failed"):
            return _responses_error_code(event)
        return True if kind not in self._preamble else None

    def content_started(self, events: bytes) -> bool:
        return any(marker in events for marker in self._content_markers)

    def answer_from(
        self, source: WireFormat, doc: dict[str, Any], body: dict[str, Any], model: str
    ) -> dict[str, Any]:
        response_id = f"resp_{uuid.uuid4().hex}"
        if source == "openai":
            return chat_answer_to_response(doc, body, response_id, model)
        _require_pair(source, "anthropic", self.name)
        return anthropic_answer_to_response(doc, body, response_id, model)

    def stream_from(self, source: WireFormat, body: dict[str, Any], model: str) -> StreamTranslator:
        response_id = f"resp_{uuid.uuid4().hex}"
        if source == "openai":
            return ChatToResponsesStream(body, response_id, model)
        _require_pair(source, "anthropic", self.name)
        return AnthropicToResponsesStream(body, response_id, model)

    def stream_error_event(self, message: str, status: int) -> bytes:
        return responses_wire.stream_error_event(message, status)

    def stream_assembly(self) -> StreamAssembly | None:
        return ResponsesStreamAssembly()

    def replay_as_stream(self, answer: dict[str, Any], body: Mapping[str, Any]) -> list[bytes]:
        return responses_wire.response_stream(answer)

    def static_answer(self, text: str, model: str, request_id: str) -> dict[str, Any]:
        return responses_wire.response_object(
            response_id=f"resp_degraded_{request_id}",
            model=model,
            output=[responses_wire.message_item(f"msg_degraded_{request_id}", text)],
            usage=responses_wire.usage_object(0, 0),
            request={},
        )


ANTHROPIC: Final = AnthropicFormat()
OPENAI: Final = OpenAIFormat()
RESPONSES: Final = ResponsesFormat()
FORMATS: Final[Mapping[WireFormat, Format]] = {
    "anthropic": ANTHROPIC,
    "openai": OPENAI,
    "responses": RESPONSES,
}


def upstream_format(client: WireFormat, native: WireFormat, spoken: Collection[str]) -> Format:
    """The format a call of the `client` format is sent in to an upstream whose native
    format is `native` and which speaks the formats in `spoken`: the client's own when it
    speaks it (the body passes through), else its native one (the body is translated)."""
    return FORMATS[client] if client in spoken else FORMATS[native]


def _tool_names(body: Mapping[str, Any], name_of: Callable[[dict[str, Any]], object]) -> list[str]:
    tools = body.get("tools")
    names = (
        [name_of(tool) for tool in tools if isinstance(tool, dict)]
        if isinstance(tools, list)
        else []
    )
    return [name for name in names if isinstance(name, str)]


def _chat_tool_name(tool: dict[str, Any]) -> object:
    function = tool.get("function")
    return function.get("name") if isinstance(function, dict) else None


def _require_pair(source: str, expected: str, target: str) -> None:
    if source != expected:
        raise ValueError(f"no translation of {source} answers to {target}")


def _responses_error_code(event: SSEEvent) -> str:
    """The error type of a Responses `error` or `response.failed` event."""
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return "api_error"
    if not isinstance(doc, dict):
        return "api_error"
    error = doc.get("response", {}).get("error") if doc.get("type") == "response.failed" else doc
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if isinstance(code, str) and code else "api_error"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _error_type(event: SSEEvent) -> str:
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return "api_error"
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        return str(error["type"])
    return "api_error"
