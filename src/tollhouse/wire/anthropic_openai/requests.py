"""Request bodies between Chat Completions and Messages, both ways.

Each function builds a new body from the fields it knows; everything else is dropped, because
an upstream of the other format would reject (or misread) a field it does not know. Input that
cannot be expressed in the target format raises `BadRequest` naming the offending `param`,
so the client learns at once instead of getting a silently different answer.

Decisions, OpenAI → Anthropic:

- `system` and `developer` messages, wherever they stand, join (in order, blank line
  between) into the top-level `system`; Anthropic has no mid-conversation system turn.
- `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else
  `DEFAULT_MAX_TOKENS` (4096).
- `temperature` is 0–2 in OpenAI and 0–1 in Anthropic: a value above 1 is refused (400
  naming `temperature`), never clamped, since it asks for an answer Claude can't give;
  `top_p` outside 0–1 likewise.
- `reasoning_effort` becomes an extended-thinking budget (`THINKING_BUDGET_BY_EFFORT`: none and
  minimal → off, low 1024, medium 4096, high 16384, xhigh 32000, max 64000), kept below
  `max_tokens`; thinking is left off when that leaves under 1024 tokens or when a tool call
  is forced, and `temperature`/`top_p` are dropped when it is on — Anthropic refuses each of
  these combinations.
- `response_format` json_schema becomes Anthropic's native structured output,
  `output_config.format: {type: json_schema, schema}` (constrained decoding, so `strict` is
  met whatever it says; the format's `name` only names it, its `description` joins `system`);
  json_object becomes the same with the schema `{"type": "object"}`; text is the default.
  Another type is refused.
- `user` (or its successor `safety_identifier`) becomes `metadata.user_id`.
- Function tools keep name, description and parameters; `strict` is dropped (many OpenAI
  SDK helpers set it by default and only some Claude models accept it).
- `n` > 1, the legacy `functions`/`function_call`, non-function tools and content parts with no
  Anthropic block (audio, uploaded file ids) are refused. So is every feature Claude can't
  carry that would change the answer, when set to anything but its neutral value
  (`UNCARRIED_BY_ANTHROPIC`: `presence_penalty`, `frequency_penalty`, `logit_bias`, `seed`,
  `logprobs`, `top_logprobs`, `audio`, `modalities` other than text, `prediction`,
  `web_search_options`, `verbosity`): the 400 names it. What only concerns OpenAI's own
  bookkeeping (`store`, `metadata`, `service_tier`) is left out.
- Consecutive messages of one role merge into one (Anthropic requires alternating roles),
  with tool results first in a user turn as Anthropic requires; empty text is left out
  (Anthropic rejects empty text blocks).

Decisions, Anthropic → OpenAI:

- `max_tokens` stays `max_tokens` (not `max_completion_tokens`): vLLM, Ollama and other
  OpenAI-compatible servers understand it and OpenAI accepts it for non-reasoning models.
- Tool results become `tool` messages placed before the rest of the user turn; their content
  is flattened to text, `is_error` prefixes it with `TOOL_ERROR_PREFIX`, images in a tool
  result are refused (a `tool` message carries text only).
- `output_config.format` (json_schema) becomes `response_format: {type: json_schema,
  json_schema: {name: "output", schema, strict: true}}` (strict: Anthropic's format is
  constrained); `output_config.effort` becomes `reasoning_effort`. Another format type is
  refused.
- `top_k` (no OpenAI counterpart) is refused, naming it.
- `thinking` blocks and the `thinking` option, `cache_control`, `service_tier` and other
  Anthropic-only fields are dropped; server tools (web search, code execution, ...) are
  refused.
- A streaming request asks for `stream_options.include_usage` so the stream's usage can be
  mapped back.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollhouse.errors import BadRequest

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
THINKING_BUDGET_BY_EFFORT: dict[str, int] = {
    "none": 0,
    "minimal": 0,
    "low": 1024,
    "medium": 4096,
    "high": 16384,
    "xhigh": 32000,
    "max": 64000,
}
TOOL_ERROR_PREFIX = "Error: "
# Chat Completions features Claude has no counterpart for, each with its neutral value (what
# asks for nothing): set to anything else, the call is refused rather than answered without.
UNCARRIED_BY_ANTHROPIC: dict[str, Any] = {
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logit_bias": {},
    "seed": None,
    "logprobs": False,
    "top_logprobs": None,
    "audio": None,
    "modalities": ["text"],
    "prediction": None,
    "web_search_options": None,
    "verbosity": None,
}
OUTPUT_FORMAT_NAME = "output"
EMPTY_TOOL_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


# ---------------------------------------------------------------- OpenAI → Anthropic


def openai_request_to_anthropic(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """A Messages request for `upstream_model` equivalent to a Chat Completions `body`."""
    n = body.get("n")
    if n is not None and n != 1:
        raise BadRequest("Only n=1 is supported when routed to an Anthropic model.", param="n")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            raise BadRequest(f"`{legacy}` is deprecated; use `tools`.", param=legacy)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty list.", param="messages")

    for name, neutral in UNCARRIED_BY_ANTHROPIC.items():
        value = body.get(name)
        if value is not None and value != neutral:
            raise BadRequest(
                f"`{name}` has no counterpart on Anthropic models, so this call can't be "
                "answered as asked; leave it out to call this model.",
                param=name,
            )
    system, turns = _openai_messages_to_anthropic(messages)
    output_format, description = _response_format_to_anthropic(body.get("response_format"))
    if description:
        system.append(description)

    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    out: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens, "messages": turns}
    if system:
        out["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadRequest(f"`{name}` must be a number.", param=name)
        if not 0 <= value <= 1:
            raise BadRequest(
                f"`{name}`: {value} is outside the range Anthropic models accept (0 to 1).",
                param=name,
            )
        out[name] = value
    if output_format is not None:
        out["output_config"] = {"format": output_format}
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        out["tools"] = [_openai_tool_to_anthropic(tool, i) for i, tool in enumerate(tools)]
        choice = _openai_tool_choice_to_anthropic(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        out["tool_choice"] = choice
    user = body.get("user") or body.get("safety_identifier")
    if user:
        out["metadata"] = {"user_id": user}
    _apply_reasoning_effort(out, body.get("reasoning_effort"))
    if body.get("stream"):
        out["stream"] = True
    return out


def _openai_messages_to_anthropic(
    messages: list[Any],
) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest("Each message must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role in ("system", "developer"):
            text = _openai_text(message.get("content"), f"messages[{i}].content")
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _openai_user_content(message.get("content"), f"messages[{i}].content")
            _append_turn(turns, "user", blocks)
        elif role == "assistant":
            _append_turn(turns, "assistant", _openai_assistant_blocks(message, i))
        elif role == "tool":
            _append_turn(turns, "user", [_openai_tool_message_to_anthropic(message, i)])
        else:
            raise BadRequest(f"Unsupported message role {role!r}.", param=f"messages[{i}].role")
    _tool_results_first(turns)
    return system, turns


def _openai_tool_message_to_anthropic(message: dict[str, Any], i: int) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str):
        raise BadRequest(
            "A tool message needs its `tool_call_id`.", param=f"messages[{i}].tool_call_id"
        )
    content = message.get("content")
    if not isinstance(content, str):
        content = _openai_user_content(content, f"messages[{i}].content")
    return {"type": "tool_result", "tool_use_id": tool_call_id, "content": content}


def _append_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add `blocks` (a list of the caller's own) to the last turn when it has `role`, else
    start a turn: extended in place, so a run of same-role messages costs linear time."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _tool_results_first(turns: list[dict[str, Any]]) -> None:
    """Anthropic wants a user turn's tool results before any other content; a stable sort
    keeps the order within each kind. Run once, after every merge."""
    for turn in turns:
        if turn["role"] == "user" and len(turn["content"]) > 1:
            turn["content"].sort(key=_is_not_tool_result)


def _is_not_tool_result(block: dict[str, Any]) -> bool:
    return bool(block["type"] != "tool_result")


def _openai_text(content: Any, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise BadRequest("Only text content is allowed here.", param=f"{param}[{j}]")
            texts.append(part.get("text") or part.get("refusal") or "")
        return "".join(texts)
    raise BadRequest("`content` must be a string or a list of parts.", param=param)


def _openai_user_content(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest("`content` must be a string or a list of parts.", param=param)
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_openai_image_to_anthropic(part.get("image_url"), f"{param}[{j}]"))
        elif kind == "file":
            blocks.append(_openai_file_to_anthropic(part.get("file"), f"{param}[{j}]"))
        else:
            raise BadRequest(
                f"Content part type {kind!r} cannot be sent to an Anthropic model.",
                param=f"{param}[{j}].type",
            )
    return blocks


def _openai_image_to_anthropic(image: Any, param: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise BadRequest("`image_url.url` must be a string.", param=f"{param}.image_url.url")
    if url.startswith("data:"):
        media_type, data = _split_data_url(url, f"{param}.image_url.url")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(
        "`image_url.url` must be an http(s) URL or a base64 data: URL.",
        param=f"{param}.image_url.url",
    )


def _openai_file_to_anthropic(file: Any, param: str) -> dict[str, Any]:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise BadRequest(
            "Only inline files (`file.file_data`) can be sent to an Anthropic model.",
            param=f"{param}.file",
        )
    media_type, data = _split_data_url(data_url, f"{param}.file.file_data")
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "document", "source": source}


def _split_data_url(url: str, param: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise BadRequest("A data: URL must be base64 encoded.", param=param)
    return header[len("data:") : -len(";base64")], data


def _openai_assistant_blocks(message: dict[str, Any], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _openai_text(message.get("content"), f"messages[{i}].content")
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.get("tool_calls") or []):
        param = f"messages[{i}].tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise BadRequest("Tool calls need an `id` and a `function`.", param=param)
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            tool_input = None
        if not isinstance(tool_input, dict):
            raise BadRequest(
                "Tool call arguments must be a JSON object.", param=f"{param}.function.arguments"
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": tool_input,
            }
        )
    return blocks


def _openai_tool_to_anthropic(tool: Any, i: int) -> dict[str, Any]:
    is_function = isinstance(tool, dict) and tool.get("type") == "function"
    function = tool.get("function") if is_function else None
    if not isinstance(function, dict):
        raise BadRequest(
            "Only function tools can be sent to an Anthropic model.", param=f"tools[{i}]"
        )
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or EMPTY_TOOL_SCHEMA,
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _openai_tool_choice_to_anthropic(choice: Any) -> dict[str, Any]:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise BadRequest(
        "`tool_choice` must be auto, none, required or a named function.", param="tool_choice"
    )


def _response_format_to_anthropic(
    response_format: Any,
) -> tuple[dict[str, Any] | None, str | None]:
    """Anthropic's `output_config.format` for an OpenAI `response_format`, and the format's
    description for `system` (None for either when there is none)."""
    if response_format is None:
        return None, None
    if not isinstance(response_format, dict):
        raise BadRequest("`response_format` must be an object.", param="response_format")
    kind = response_format.get("type")
    if kind == "text":
        return None, None
    if kind == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}, None
    if kind != "json_schema":
        raise BadRequest(
            f"`response_format.type` {kind!r} can't be carried to an Anthropic model; "
            "use text, json_object or json_schema.",
            param="response_format.type",
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise BadRequest(
            "`response_format.json_schema.schema` must be a JSON Schema object.",
            param="response_format.json_schema.schema",
        )
    description = spec.get("description") if isinstance(spec, dict) else None
    about = (
        f"The JSON output: {description}" if isinstance(description, str) and description else None
    )
    return {"type": "json_schema", "schema": schema}, about


def _apply_reasoning_effort(out: dict[str, Any], effort: Any) -> None:
    if effort is None:
        return
    if effort not in THINKING_BUDGET_BY_EFFORT:
        raise BadRequest(
            f"`reasoning_effort` must be one of {', '.join(THINKING_BUDGET_BY_EFFORT)}.",
            param="reasoning_effort",
        )
    budget = min(THINKING_BUDGET_BY_EFFORT[effort], out["max_tokens"] - 1)
    forced_tool = out.get("tool_choice", {}).get("type") in ("any", "tool")
    if budget < MIN_THINKING_BUDGET or forced_tool:
        return
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    out.pop("temperature", None)
    out.pop("top_p", None)


# ---------------------------------------------------------------- Anthropic → OpenAI


def anthropic_request_to_openai(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """A Chat Completions request for `upstream_model` equivalent to a Messages `body`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty list.", param="messages")
    out_messages: list[dict[str, Any]] = []
    system = _anthropic_text(body.get("system"), "system")
    if system:
        out_messages.append({"role": "system", "content": system})
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest("Each message must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role == "user":
            out_messages.extend(_anthropic_user_messages(message.get("content"), i))
        elif role == "assistant":
            out_messages.append(_anthropic_assistant_message(message.get("content"), i))
        else:
            raise BadRequest(f"Unsupported message role {role!r}.", param=f"messages[{i}].role")

    if body.get("top_k") is not None:
        raise BadRequest(
            "`top_k` has no counterpart on OpenAI models, so this call can't be answered as "
            "asked; leave it out to call this model.",
            param="top_k",
        )
    out: dict[str, Any] = {"model": upstream_model, "messages": out_messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    _output_config_to_openai(out, body.get("output_config"))
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    tools = body.get("tools")
    if tools:
        out["tools"] = [anthropic_tool_to_openai(tool, i) for i, tool in enumerate(tools)]
        choice = body.get("tool_choice")
        if choice is not None:
            out["tool_choice"] = _anthropic_tool_choice_to_openai(choice)
            if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
                out["parallel_tool_calls"] = False
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id"):
        out["user"] = metadata["user_id"]
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _output_config_to_openai(out: dict[str, Any], config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise BadRequest("`output_config` must be an object.", param="output_config")
    effort = config.get("effort")
    if effort is not None:
        out["reasoning_effort"] = effort
    fmt = config.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind != "json_schema":
        raise BadRequest(
            f"`output_config.format.type` {kind!r} can't be carried to an OpenAI model; "
            "use json_schema.",
            param="output_config.format.type",
        )
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest(
            "`output_config.format.schema` must be a JSON Schema object.",
            param="output_config.format.schema",
        )
    out["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": OUTPUT_FORMAT_NAME, "schema": schema, "strict": True},
    }


def _anthropic_text(content: Any, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise BadRequest("Content must be a string or a list of blocks.", param=param)
    texts = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind != "text":
            raise BadRequest(f"Only text is allowed here, not {kind!r}.", param=f"{param}[{j}]")
        texts.append(block.get("text") or "")
    return "\n\n".join(texts)


def _anthropic_user_messages(content: Any, i: int) -> list[dict[str, Any]]:
    param = f"messages[{i}].content"
    if content is None or isinstance(content, str):
        return [{"role": "user", "content": content or ""}]
    if not isinstance(content, list):
        raise BadRequest("Content must be a string or a list of blocks.", param=param)
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            tool_messages.append(_anthropic_tool_result_to_openai(block, f"{param}[{j}]"))
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append(_anthropic_image_to_openai(block, f"{param}[{j}]"))
        elif kind == "document":
            parts.append(_anthropic_document_to_openai(block, f"{param}[{j}]"))
        elif kind not in ("thinking", "redacted_thinking"):
            raise BadRequest(
                f"Content block type {kind!r} cannot be sent to an OpenAI model.",
                param=f"{param}[{j}].type",
            )
    if not parts:
        return tool_messages
    # A lone text part is sent as a plain string, which every OpenAI-compatible server reads.
    user_content: Any = (
        parts[0]["text"] if len(parts) == 1 and parts[0]["type"] == "text" else parts
    )
    return [*tool_messages, {"role": "user", "content": user_content}]


def _anthropic_image_to_openai(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source") or {}
    url: Any
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = source.get("url")
    else:
        raise BadRequest("Image source must be base64 or url.", param=f"{param}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _anthropic_document_to_openai(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return {"type": "text", "text": source.get("data") or ""}
    if source.get("type") == "base64":
        file: dict[str, Any] = {
            "file_data": f"data:{source.get('media_type')};base64,{source.get('data')}"
        }
        if block.get("title"):
            file["filename"] = block["title"]
        return {"type": "file", "file": file}
    raise BadRequest("Document source must be base64 or text.", param=f"{param}.source")


def _anthropic_tool_result_to_openai(block: dict[str, Any], param: str) -> dict[str, Any]:
    text = _anthropic_text(block.get("content"), f"{param}.content")
    if block.get("is_error"):
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}


def _anthropic_assistant_message(content: Any, i: int) -> dict[str, Any]:
    if content is None or isinstance(content, str):
        return {"role": "assistant", "content": content or ""}
    if not isinstance(content, list):
        raise BadRequest("Content must be a string or a list of blocks.", param=f"messages[{i}]")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):
            raise BadRequest(
                f"Content block type {kind!r} cannot be sent to an OpenAI model.",
                param=f"messages[{i}].content[{j}].type",
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def anthropic_tool_to_openai(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise BadRequest(
            f"Server tool {kind!r} cannot be sent to an OpenAI model.", param=f"tools[{i}].type"
        )
    function: dict[str, Any] = {
        "name": tool.get("name"),
        "parameters": tool.get("input_schema") or EMPTY_TOOL_SCHEMA,
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _anthropic_tool_choice_to_openai(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise BadRequest("`tool_choice` must be auto, any, none or tool.", param="tool_choice")
