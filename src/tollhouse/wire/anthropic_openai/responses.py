"""Whole (non-streaming) response bodies between Messages and Chat Completions.

The output validates against the official SDKs' own models (`anthropic.types.Message`,
`openai.types.chat.ChatCompletion`). Ids keep the upstream id's tail under the client
format's prefix (`msg_01AB` ↔ `chatcmpl-01AB`) so a logged id can be traced upstream; the
`model` is the name the client asked for. Text blocks are concatenated without separator,
exactly as the streaming translation delivers them; thinking is dropped (Chat Completions has
no place for it); stop reasons and usage follow `stop_reasons` and `usage`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollhouse.errors import UpstreamError

from .errors import translate_error_body
from .stop_reasons import (
    ANTHROPIC_TO_OPENAI_FINISH,
    OPENAI_TO_ANTHROPIC_STOP,
    anthropic_stop_reason,
    openai_finish_reason,
)
from .usage import (
    anthropic_thinking_tokens,
    anthropic_usage_to_openai,
    anthropic_usage_totals,
    openai_reasoning_tokens,
    openai_usage_to_anthropic,
)

__all__ = [
    "ANTHROPIC_TO_OPENAI_FINISH",
    "OPENAI_TO_ANTHROPIC_STOP",
    "anthropic_response_to_openai",
    "openai_response_to_anthropic",
    "translate_error_body",
]


def openai_id(anthropic_id: Any) -> str:
    return "chatcmpl-" + str(anthropic_id or "").removeprefix("msg_")


def anthropic_id(openai_id: Any) -> str:
    return "msg_" + str(openai_id or "").removeprefix("chatcmpl-")


def anthropic_response_to_openai(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A `chat.completion` for the client from an upstream Messages response."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in body.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            function = {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()}
            calls.append({"id": block["id"], "type": "function", "function": function})
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    usage = body.get("usage")
    return {
        "id": openai_id(body.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": openai_finish_reason(body.get("stop_reason")),
            }
        ],
        "usage": anthropic_usage_to_openai(
            anthropic_usage_totals(usage), anthropic_thinking_tokens(usage)
        ),
        "system_fingerprint": None,
    }


def openai_response_to_anthropic(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A Messages `message` for the client from an upstream `chat.completion`.

    Raises `UpstreamError` when the upstream answer cannot be expressed: no choice at all, or
    tool call arguments that are not a JSON object (Anthropic's `input` must be one). An
    OpenAI `refusal` becomes the text and the `refusal` stop reason.
    """
    choices = body.get("choices") or []
    if not choices:
        raise UpstreamError("The upstream response has no choices.")
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    refusal = message.get("refusal")
    text = message.get("content") or refusal
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _tool_input(function.get("arguments")),
            }
        )
    usage = body.get("usage")
    anthropic_usage: dict[str, Any] = dict(openai_usage_to_anthropic(usage))
    reasoning_tokens = openai_reasoning_tokens(usage)
    if reasoning_tokens is not None:
        anthropic_usage["output_tokens_details"] = {"thinking_tokens": reasoning_tokens}
    return {
        "id": anthropic_id(body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "refusal" if refusal else anthropic_stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage,
    }


def _tool_input(arguments: Any) -> dict[str, Any]:
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError(
            "The upstream model returned tool arguments that are not a JSON object: "
            f"{arguments!r:.200}"
        )
    return parsed
