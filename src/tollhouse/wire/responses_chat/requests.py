"""A Responses request as a Chat Completions request.

- `instructions` becomes the first `system` message; `developer` messages become `system`
  ones (both mean the same to a chat model).
- `input` items in order: messages (text and image parts), `function_call` items as the
  assistant's `tool_calls` (consecutive ones in one assistant message, after its text),
  `function_call_output` items as `tool` messages. `reasoning` items are left out: Chat
  Completions has no place for them (their content is the upstream's, opaque).
- `tools` of type `function` become chat function tools; any other tool type (web search,
  file search, ...), `item_reference` items and the request fields that need OpenAI's own
  state (`background`, `conversation`, `prompt`) are refused with a 400 naming them, never
  dropped.
- `text.format` json_schema / json_object becomes `response_format`; `reasoning.effort`
  becomes `reasoning_effort`; `max_output_tokens` becomes `max_completion_tokens`.
- A stream asks for the usage chunk: the answer's `response.completed` carries usage.
"""

from __future__ import annotations

from typing import Any

from tollhouse.errors import BadRequest
from tollhouse.wire.responses import input_items

_COPIED = ("temperature", "top_p", "parallel_tool_calls", "user", "stream")
_NEEDS_OPENAI = ("background", "conversation", "prompt")


def responses_request_to_chat(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    for field in _NEEDS_OPENAI:
        if body.get(field):
            raise BadRequest(
                f"{field}: can't be used with this model's upstream, which does not speak the "
                "Responses API",
                param=field,
            )
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        messages.append({"role": "system", "content": body["instructions"]})
    for i, item in enumerate(input_items(body.get("input"))):
        _add_item(messages, item, f"input[{i}]")
    out: dict[str, Any] = {"model": upstream_model, "messages": messages}
    for key in _COPIED:
        if key in body and body[key] is not None:
            out[key] = body[key]
    if body.get("stream") is True:
        out["stream_options"] = {"include_usage": True}
    if isinstance(body.get("max_output_tokens"), int):
        out["max_completion_tokens"] = body["max_output_tokens"]
    tools = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(body.get("tools") or ())]
    if tools:
        out["tools"] = tools
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        out["tool_choice"] = choice
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        out["reasoning_effort"] = reasoning["effort"]
    return out


def _add_item(messages: list[dict[str, Any]], item: dict[str, Any], where: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = "system" if item.get("role") == "developer" else str(item.get("role"))
        messages.append({"role": role, "content": _content(item.get("content"), where)})
    elif kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else _joined_text(output)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
    elif kind == "item_reference":
        raise BadRequest(
            f"{where}: item_reference items can't be sent to this model's upstream; "
            "send the item itself",
            param=where,
        )
    # reasoning items: nothing to carry (see the module's docstring)


def _content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or ()):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        else:
            raise BadRequest(
                f"{where}.content[{j}]: content of type {kind!r} can't be sent to this "
                "model's upstream",
                param=f"{where}.content[{j}]",
            )
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _joined_text(output: Any) -> str:
    if not isinstance(output, list):
        return "" if output is None else str(output)
    return "".join(
        str(part.get("text", "")) for part in output if isinstance(part, dict) and "text" in part
    )


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise BadRequest(
            f"{where}: tools of type {kind!r} can't be used with this model's upstream; "
            "only function tools translate",
            param=where,
        )
    function: dict[str, Any] = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    kind = choice.get("type") if isinstance(choice, dict) else None
    raise BadRequest(
        f"tool_choice: {kind!r} can't be used with this model's upstream", param="tool_choice"
    )


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    raise BadRequest(
        f"text.format: type {fmt.get('type')!r} can't be used with this model's upstream",
        param="text.format",
    )
