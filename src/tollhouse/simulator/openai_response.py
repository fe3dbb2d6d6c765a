"""Answers as the OpenAI Chat Completions API sends them: one `chat.completion`, or a stream
of `chat.completion.chunk`s: per choice a first chunk with the role, content deltas, tool
call deltas (index, id, name and empty arguments first, then argument fragments), a chunk
with the `finish_reason`; with `stream_options.include_usage`, a last chunk with no choices
and the usage (`usage: null` on the others); then `data: [DONE]`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tollhouse.errors import render_error_body
from tollhouse.simulator.answer import Answer
from tollhouse.simulator.ids import openai_tool_call_id
from tollhouse.simulator.response import StreamEvent, merge_usage
from tollhouse.simulator.text import stream_pieces
from tollhouse.tokens.estimate import text_tokens
from tollhouse.wire.sse import frame_event, frame_json

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_ARGUMENT_PIECE = 10
_DONE = frame_event(None, b"[DONE]")


@dataclass(frozen=True, slots=True)
class OpenAIUsage:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    # Usage fields asked for (config `usage`, header `x-simulator-usage`, its
    # `service_tier` aside: that one goes on the completion): merged over the simulated.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def doc(self) -> dict[str, Any]:
        return merge_usage(self._counts(), self.extra)

    def _counts(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """What every document of one completion shares."""

    id: str
    created: int
    model: str
    service_tier: str = "default"

    def head(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": self.service_tier,
            "system_fingerprint": system_fingerprint(self.model),
        }


def system_fingerprint(model: str) -> str:
    return "fp_" + hashlib.blake2b(model.encode(), digest_size=5).hexdigest()


def completion_doc(
    completion: Completion, answers: list[Answer], usage: OpenAIUsage
) -> dict[str, Any]:
    choices = []
    for index, answer in enumerate(answers):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.text or not answer.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": openai_tool_call_id(),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in answer.tool_calls
            ]
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS[answer.stop_reason],
            }
        )
    return {**completion.head("chat.completion"), "choices": choices, "usage": usage.doc()}


def stream_events(
    completion: Completion, answers: list[Answer], usage: OpenAIUsage, include_usage: bool
) -> Iterator[StreamEvent]:
    """The stream's chunks, each framed only when it is asked for."""
    head = completion.head("chat.completion.chunk")
    if include_usage:
        head["usage"] = None

    def chunk(
        index: int, delta: dict[str, Any], tokens: int = 0, finish: str | None = None
    ) -> StreamEvent:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return StreamEvent(frame_json(None, {**head, "choices": [choice]}), tokens)

    for index, answer in enumerate(answers):
        first_content = "" if answer.text or not answer.tool_calls else None
        yield chunk(index, {"role": "assistant", "content": first_content, "refusal": None})
        for piece in stream_pieces(answer.text):
            yield chunk(index, {"content": piece}, text_tokens(piece))
        for k, call in enumerate(answer.tool_calls):
            opening = {"index": k, "id": openai_tool_call_id(), "type": "function"}
            opening["function"] = {"name": call.name, "arguments": ""}
            yield chunk(index, {"tool_calls": [opening]})
            arguments = call.arguments
            for at in range(0, len(arguments), _ARGUMENT_PIECE):
                piece = arguments[at : at + _ARGUMENT_PIECE]
                fragment = {"index": k, "function": {"arguments": piece}}
                yield chunk(index, {"tool_calls": [fragment]}, text_tokens(piece))
        yield chunk(index, {}, finish=FINISH_REASONS[answer.stop_reason])
    if include_usage:
        tail = {**head, "choices": [], "usage": usage.doc()}
        yield StreamEvent(frame_json(None, tail), 0)
    yield StreamEvent(_DONE, 0)


def error_frame(message: str) -> bytes:
    """The `data: {"error": ...}` event that ends a stream which failed after it started."""
    return frame_event(None, render_error_body("openai", message, status=500))
