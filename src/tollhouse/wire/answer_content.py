"""What an answer says, read out of a whole answer of a client format, and the follow-up turns
that tell the model what was wrong with it (the corrective retry of stages/check).

`AnswerContent` is the answer's text (its text blocks or message content, joined) and its
tool calls (each with its input as JSON text). The corrective turns are appended to the
client's own request, in its own format, so that the retry is translated for the upstream
like any request: the answer as the assistant's turn, then a tool result for each tool call
(an error for each call whose input was wrong, "not run" for the others: every tool call
must be answered), then the feedback as a user turn.

Anthropic Messages and Chat Completions only: the Responses API is not read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

NOT_RUN = "Not run: another tool call of this turn had invalid input. Call the tools again."


@dataclass(frozen=True, slots=True)
class ToolCallContent:
    id: str
    name: str
    arguments: str  # the input as JSON text, as the model wrote it


@dataclass(frozen=True, slots=True)
class AnswerContent:
    text: str
    tool_calls: tuple[ToolCallContent, ...] = ()


# ---------------------------------------------------------------- Anthropic Messages


def anthropic_answer_content(doc: Mapping[str, Any]) -> AnswerContent:
    texts: list[str] = []
    calls: list[ToolCallContent] = []
    for block in doc.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input")).decode()
            calls.append(
                ToolCallContent(str(block.get("id", "")), str(block.get("name")), arguments)
            )
    return AnswerContent("".join(texts), tuple(calls))


def anthropic_tool_schemas(body: Mapping[str, Any]) -> dict[str, Any]:
    """The input schema of each custom tool the request offers, by name."""
    schemas: dict[str, Any] = {}
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and "input_schema" in tool:
            schemas[tool["name"]] = tool["input_schema"]
    return schemas


def anthropic_requested_schema(body: Mapping[str, Any]) -> Any:
    """The JSON Schema `output_config.format` asks the answer to match, or None."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema")
    return None


def anthropic_with_correction(
    body: dict[str, Any], doc: Mapping[str, Any], feedback: str, tool_errors: Mapping[str, str]
) -> dict[str, Any]:
    content = [
        block
        for block in doc.get("content") or ()
        if isinstance(block, dict) and not (block.get("type") == "text" and not block.get("text"))
    ]
    if not content:
        content = [{"type": "text", "text": "(no answer)"}]
    reply: list[dict[str, Any]] = [
        {
            "type": "tool_result",
            "tool_use_id": block["id"],
            "content": tool_errors.get(block["id"], NOT_RUN),
            "is_error": True,
        }
        for block in content
        if block.get("type") == "tool_use" and "id" in block
    ]
    reply.append({"type": "text", "text": feedback})
    messages = [
        *(body.get("messages") or ()),
        {"role": "assistant", "content": content},
        {"role": "user", "content": reply},
    ]
    return {**body, "messages": messages}


# ---------------------------------------------------------------- Chat Completions


def openai_answer_content(doc: Mapping[str, Any]) -> AnswerContent:
    message = _openai_message(doc)
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    calls: list[ToolCallContent] = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        calls.append(
            ToolCallContent(
                str(call.get("id", "")),
                str(function.get("name")),
                arguments if isinstance(arguments, str) else "",
            )
        )
    return AnswerContent(text, tuple(calls))


def openai_tool_schemas(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters schema of each function tool the request offers, by name (a function
    without one takes no arguments: an empty object)."""
    schemas: dict[str, Any] = {}
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            schemas[function["name"]] = function.get("parameters") or {"type": "object"}
    return schemas


def openai_requested_schema(body: Mapping[str, Any]) -> Any:
    """The JSON Schema `response_format` asks the answer to match (json_object: any object),
    or None."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return {"type": "object"}
    spec = fmt.get("json_schema") if kind == "json_schema" and isinstance(fmt, dict) else None
    return spec.get("schema") if isinstance(spec, dict) else None


def openai_with_correction(
    body: dict[str, Any], doc: Mapping[str, Any], feedback: str, tool_errors: Mapping[str, str]
) -> dict[str, Any]:
    message = _openai_message(doc)
    assistant: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict) and "id" in c]
    if calls:
        assistant["tool_calls"] = calls
    turns = [
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": tool_errors.get(call["id"], NOT_RUN),
        }
        for call in calls
    ]
    messages = [
        *(body.get("messages") or ()),
        assistant,
        *turns,
        {"role": "user", "content": feedback},
    ]
    return {**body, "messages": messages}


def _openai_message(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = doc.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return message
    return {}
