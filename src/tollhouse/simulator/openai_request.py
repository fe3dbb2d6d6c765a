"""OpenAI Chat Completions requests as the real API checks them, turned into an `Ask`.

Refused (400 `invalid_request_error` with OpenAI's `param` and `code`, e.g. `param:
"messages[0].role", code: "invalid_value"`): a missing or mistyped `model` or `messages`, an
empty conversation, unknown roles, malformed content parts and tool calls, a `tool` message
that answers no tool call or tool calls left unanswered, `max_tokens` /
`max_completion_tokens` / `n` out of range, a bad `stop`, `stream_options` without `stream`,
`temperature`/`top_p` out of range, bad tools, and a `tool_choice` without tools or naming
none of them. Unknown fields are accepted, so a new API feature does not break the simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tollhouse.simulator.answer import Ask, ToolChoice, ToolSpec
from tollhouse.simulator.request_checks import (
    InvalidRequest,
    is_int,
    is_number,
    is_str_list,
    json_type,
)
from tollhouse.simulator.text import conversation_digest

MAX_N = 128
MAX_STOP_SEQUENCES = 4
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(slots=True)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    n: int
    ask: Ask


def parse_chat(doc: dict[str, Any], seed: int) -> ChatRequest:
    model = doc.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter")
    if not isinstance(model, str) or not model:
        raise _wrong_type("model", "a string", model)
    messages = _messages(doc)
    legacy_max_tokens = _positive_int(doc, "max_tokens")
    max_tokens = _positive_int(doc, "max_completion_tokens") or legacy_max_tokens
    n = _positive_int(doc, "n") or 1
    if n > MAX_N:
        raise InvalidRequest(
            f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but got "
            f"{n} instead.",
            "n",
            "integer_above_max_value",
        )
    stream = doc.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    include_usage = _stream_options(doc, bool(stream))
    _range(doc, "temperature", 2)
    _range(doc, "top_p", 1)
    tools = _tools(doc)
    choice, tool_name = _tool_choice(doc, tools)
    ask = Ask(
        digest=conversation_digest(seed, messages),
        latest_user_text=_latest_user_text(messages),
        max_tokens=max_tokens,
        stop_sequences=_stop(doc),
        tools=tools,
        tool_choice=choice,
        tool_name=tool_name,
        json_schema=_response_schema(doc),
    )
    return ChatRequest(model, bool(stream), include_usage, n, ask)


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param,
        "invalid_type",
    )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    messages = doc.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            "messages",
            "empty_array",
        )
    unanswered: list[str] = []
    asked_at = 0  # index of the assistant message whose tool calls are being answered
    answering = False  # inside the run of tool messages after an assistant's tool calls
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
            raise InvalidRequest(
                f"Invalid value: {role!r}. Supported values are: {supported}.",
                f"{where}.role",
                "invalid_value",
            )
        if role == "tool":
            if not answering:
                raise InvalidRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise _missing(f"{where}.tool_call_id")
            if call_id in unanswered:
                unanswered.remove(call_id)
        elif unanswered:
            raise _unanswered(asked_at, unanswered)
        _content(message, role, where)
        if role == "assistant":
            unanswered = _tool_call_ids(message.get("tool_calls"), where)
            answering = bool(unanswered)
            asked_at = i
        elif role != "tool":
            answering = False
    if unanswered:
        raise _unanswered(asked_at, unanswered)
    return messages


def _unanswered(i: int, ids: list[str]) -> InvalidRequest:
    return InvalidRequest(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids),
        f"messages.[{i}].role",
    )


def _content(message: dict[str, Any], role: str, where: str) -> None:
    content = message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if "content" not in message:
            raise _missing(f"{where}.content")
        raise _wrong_type(f"{where}.content", "a string or array", content)
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong_type(f"{where}.content", "a string or array", content)
    for j, part in enumerate(content):
        part_where = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise _wrong_type(part_where, "an object", part)
        kind = part.get("type")
        if kind not in _PART_TYPES:
            supported = ", ".join(f"'{t}'" for t in _PART_TYPES)
            raise InvalidRequest(
                f"Invalid value: {kind!r}. Supported values are: {supported}.",
                f"{part_where}.type",
                "invalid_value",
            )
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _missing(f"{part_where}.text")
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _missing(f"{part_where}.image_url.url")


def _tool_call_ids(calls: Any, where: str) -> list[str]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise _wrong_type(f"{where}.tool_calls", "an array", calls)
    ids: list[str] = []
    for k, call in enumerate(calls):
        call_where = f"{where}.tool_calls[{k}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise _missing(f"{call_where}.function" if isinstance(call, dict) else call_where)
        if not isinstance(function.get("name"), str):
            raise _missing(f"{call_where}.function.name")
        if not isinstance(function.get("arguments"), str):
            raise _wrong_type(
                f"{call_where}.function.arguments", "a string", function.get("arguments")
            )
        ids.append(call["id"])
    return ids


def _positive_int(doc: dict[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if not is_int(value):
        raise _wrong_type(key, "an integer", value)
    if value < 1:
        raise InvalidRequest(
            f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got "
            f"{value} instead.",
            key,
            "integer_below_min_value",
        )
    return int(value)


def _stream_options(doc: dict[str, Any], stream: bool) -> bool:
    options = doc.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not isinstance(options, dict):
        raise _wrong_type("stream_options", "an object", options)
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", include)
    return bool(include)


def _range(doc: dict[str, Any], key: str, high: int) -> None:
    value = doc.get(key)
    if value is None:
        return
    if not is_number(value):
        raise _wrong_type(key, "a number", value)
    if not 0 <= value <= high:
        raise InvalidRequest(
            f"Invalid '{key}': decimal out of range. Expected a value between 0 and {high}, "
            f"but got {value} instead.",
            key,
            "decimal_above_max_value" if value > high else "decimal_below_min_value",
        )


def _stop(doc: dict[str, Any]) -> tuple[str, ...]:
    stop = doc.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if not is_str_list(stop):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(
            f"Invalid 'stop': array too long. Expected an array with maximum length "
            f"{MAX_STOP_SEQUENCES}, but got an array with length {len(stop)} instead.",
            "stop",
            "array_above_max_length",
        )
    return tuple(stop)


def _tools(doc: dict[str, Any]) -> tuple[ToolSpec, ...]:
    tools = doc.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise _wrong_type("tools", "an array", tools)
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in ("function", "custom"):
            raise InvalidRequest(
                f"Invalid value: {kind!r}. Supported values are: 'function' and 'custom'.",
                f"{where}.type",
                "invalid_value",
            )
        body = tool.get(kind)
        if not isinstance(body, dict):
            raise _missing(f"{where}.{kind}")
        name = body.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise InvalidRequest(
                f"Invalid '{where}.{kind}.name': string does not match pattern. Expected a "
                f"string that matches the pattern '{_TOOL_NAME.pattern}'.",
                f"{where}.{kind}.name",
                "invalid_value",
            )
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _wrong_type(f"{where}.{kind}.parameters", "an object", parameters)
        specs.append(ToolSpec(name, parameters))
    return tuple(specs)


def _tool_choice(doc: dict[str, Any], tools: tuple[ToolSpec, ...]) -> tuple[ToolChoice, str | None]:
    choice = doc.get("tool_choice")
    if choice is None:
        return "auto", None
    if not tools:
        raise InvalidRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            "tool_choice",
        )
    if choice in ("none", "auto"):
        return choice, None
    if choice == "required":
        return "any", None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "allowed_tools":
        options = choice.get("allowed_tools")
        mode = options.get("mode") if isinstance(options, dict) else None
        return ("any" if mode == "required" else "auto"), None
    named = choice.get(kind) if kind in ("function", "custom") else None
    name = named.get("name") if isinstance(named, dict) else None
    if not isinstance(name, str):
        raise InvalidRequest(
            "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or a named "
            "function.",
            "tool_choice",
            "invalid_value",
        )
    if all(t.name != name for t in tools):
        raise InvalidRequest(
            f"Invalid value for 'tool_choice': function '{name}' is not one of 'tools'.",
            "tool_choice",
            "invalid_value",
        )
    return "tool", name


def _response_schema(doc: dict[str, Any]) -> Any:
    fmt = doc.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return {"type": "object", "properties": {"answer": {"type": "string"}}}
    if kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else {}
    return None


def _latest_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] in ("user", "tool"):
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(p["text"] for p in content or () if p.get("type") == "text")
    return ""
