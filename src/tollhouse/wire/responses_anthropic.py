"""Translation between the OpenAI Responses and Anthropic Messages wire formats, composed of
the two translators that exist: Responses ↔ Chat Completions (`wire/responses_chat/`) and
Chat Completions ↔ Messages (`wire/anthropic_openai/`), so each rule is written once.

What the middle format cannot carry is lost the same way as on a Chat Completions client's
route to Claude: thinking blocks are not shown as reasoning items; `text.format` json_schema
reaches Claude as the chat translator renders `response_format`.
"""

from __future__ import annotations

from typing import Any

from tollhouse.wire.anthropic_openai import (
    AnthropicToOpenAIStream,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from tollhouse.wire.responses_chat import (
    ChatToResponsesStream,
    chat_answer_to_response,
    responses_request_to_chat,
)
from tollhouse.wire.sse import SSEEvent, SSEParser


def responses_request_to_anthropic(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    return openai_request_to_anthropic(
        responses_request_to_chat(body, upstream_model), upstream_model
    )


def anthropic_answer_to_response(
    doc: dict[str, Any], request: dict[str, Any], response_id: str, model: str
) -> dict[str, Any]:
    return chat_answer_to_response(
        anthropic_response_to_openai(doc, model), request, response_id, model
    )


class AnthropicToResponsesStream:
    """Messages SSE → Chat chunks → Responses events, event by event; accounting reads the
    first leg (`usage`, `usage_estimated`, `stop_reason` in Anthropic's terms)."""

    def __init__(self, request: dict[str, Any], response_id: str, model: str) -> None:
        self._chat = AnthropicToOpenAIStream(model, include_usage=True)
        self._responses = ChatToResponsesStream(request, response_id, model)
        self._parser = SSEParser()

    @property
    def usage(self) -> dict[str, int]:
        return self._chat.usage

    @property
    def usage_estimated(self) -> bool:
        return self._chat.usage_estimated

    @property
    def stop_reason(self) -> str | None:
        return self._chat.stop_reason

    def feed(self, event: SSEEvent) -> list[bytes]:
        return self._onward(self._chat.feed(event))

    def finish(self) -> list[bytes]:
        out = self._onward(self._chat.finish())
        for event in self._parser.flush():
            out.extend(self._responses.feed(event))
        out.extend(self._responses.finish())
        return out

    def _onward(self, chunks: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for event in self._parser.feed(b"".join(chunks)):
            out.extend(self._responses.feed(event))
        return out
