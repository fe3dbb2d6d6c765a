"""Anthropic Messages requests as the real API checks them, turned into an `Ask`.

Refused (400 `invalid_request_error`, message naming the field the way the API does, e.g.
`messages.0.role: Input should be 'user' or 'assistant'`): a missing or mistyped `model`,
`max_tokens`, `messages`; an empty conversation or an empty non-final message; unknown roles
or message keys; malformed text, image, tool_use, tool_result and thinking blocks; a
`tool_use` without its `tool_result` right after (and the reverse); bad tools, duplicate tool
names, a `tool_choice` naming no offered tool or forcing one without tools; a thinking budget
under 1024 or not under `max_tokens`, or thinking with a forced tool; bad `cache_control`
markers, more than 4 of them, or a 1-hour one after a 5-minute one. Unknown top-level
fields and block types are accepted, so a new API feature does not break the simulator.
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
from tollhouse.tokens.estimate import anthropic_prompt_prefix

MAX_CACHE_MARKERS = 4
MIN_THINKING_BUDGET = 1024
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_MESSAGE_KEYS = frozenset({"role", "content"})


@dataclass(slots=True)
class MessagesRequest:
    model: str
    stream: bool
    ask: Ask


def parse_messages(doc: dict[str, Any], seed: int) -> MessagesRequest:
    model = _model(doc)
    max_tokens = doc.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required")
    if not is_int(max_tokens):
        raise InvalidRequest("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    markers = _Markers()
    messages = _messages(doc, markers)
    system = _system(doc, markers)
    stream = doc.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    stops = doc.get("stop_sequences")
    if stops is not None and not is_str_list(stops):
        raise InvalidRequest("stop_sequences: Input should be a valid list of strings")
    tools = _tools(doc, markers)
    _check_marker_order(doc)
    choice, tool_name = _tool_choice(doc, tools)
    budget = _thinking(doc, max_tokens, choice)
    _sampling(doc)
    if doc.get("metadata") is not None and not isinstance(doc["metadata"], dict):
        raise InvalidRequest("metadata: Input should be a valid dictionary")
    ask = Ask(
        digest=conversation_digest(seed, system, messages),
        latest_user_text=_latest_user_text(messages),
        max_tokens=max_tokens,
        stop_sequences=tuple(stops or ()),
        tools=tools,
        tool_choice=choice,
        tool_name=tool_name,
        thinking_budget=budget,
        json_schema=_output_schema(doc),
    )
    return MessagesRequest(model, bool(stream), ask)


def check_count_tokens(doc: dict[str, Any]) -> None:
    """`/v1/messages/count_tokens` takes the same conversation, without `max_tokens`."""
    _model(doc)
    markers = _Markers()
    _messages(doc, markers)
    _system(doc, markers)
    tools = _tools(doc, markers)
    _check_marker_order(doc)
    _tool_choice(doc, tools)


def _model(doc: dict[str, Any]) -> str:
    model = doc.get("model")
    if model is None:
        raise InvalidRequest("model: Field required")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Input should be a valid string")
    return model


class _Markers:
    """Counts and checks `cache_control` markers across tools, system and messages."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def check(self, holder: dict[str, Any], where: str) -> None:
        marker = holder.get("cache_control")
        if marker is None:
            return
        if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
            raise InvalidRequest(f"{where}.cache_control.type: Input should be 'ephemeral'")
        if marker.get("ttl", "5m") not in ("5m", "1h"):
            raise InvalidRequest(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
        self.count += 1
        if self.count > MAX_CACHE_MARKERS:
            raise InvalidRequest(
                f"A maximum of {MAX_CACHE_MARKERS} blocks with cache_control may be provided. "
                f"Found {self.count}."
            )


def _check_marker_order(doc: dict[str, Any]) -> None:
    """The API requires longer-lived breakpoints first: in cache order (tools, system,
    messages), no `ttl: 1h` marker may follow a 5-minute one."""
    five_minutes = False
    for item in anthropic_prompt_prefix(doc):
        marker = item.item.get("cache_control") if isinstance(item.item, dict) else None
        if not marker:
            continue
        if marker.get("ttl", "5m") == "5m":
            five_minutes = True
        elif five_minutes:
            where = f"{item.where}.{item.index}" + (
                f".content.{item.block}" if item.where == "messages" else ""
            )
            raise InvalidRequest(
                f"{where}.cache_control.ttl: a ttl='1h' cache_control block must not come "
                "after a ttl='5m' cache_control block. Note that blocks are processed in the "
                "following order: `tools`, `system`, `messages`."
            )


def _messages(doc: dict[str, Any], markers: _Markers) -> list[dict[str, Any]]:
    messages = doc.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest(f"messages: Input should be a valid list, not {json_type(messages)}")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    last = len(messages) - 1
    tool_uses: list[list[str]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where}: Input should be a valid dictionary")
        for key in message:
            if key not in _MESSAGE_KEYS:
                raise InvalidRequest(f"{where}.{key}: Extra inputs are not permitted")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise InvalidRequest(f"{where}.content: Field required")
        content = message["content"]
        if isinstance(content, str):
            blocks: list[Any] = []
        elif isinstance(content, list):
            blocks = content
        else:
            raise InvalidRequest(f"{where}.content: Input should be a valid string or list")
        if not content and not (i == last and role == "assistant"):
            raise InvalidRequest(
                f"{where}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        for j, block in enumerate(blocks):
            _block(block, f"{where}.content.{j}", role, markers)
        tool_uses.append(_ids(blocks, "tool_use", "id"))
        _check_tool_results(blocks, tool_uses[i - 1] if i else [], where)
        if i and tool_uses[i - 1]:
            answered = set(_ids(blocks, "tool_result", "tool_use_id"))
            missing = [tid for tid in tool_uses[i - 1] if tid not in answered]
            if missing:
                raise _missing_results(i - 1, missing)
    if tool_uses[last]:
        raise _missing_results(last, tool_uses[last])
    return messages


def _ids(blocks: list[Any], kind: str, key: str) -> list[str]:
    return [b[key] for b in blocks if b.get("type") == kind]


def _check_tool_results(blocks: list[Any], previous_uses: list[str], where: str) -> None:
    for j, block in enumerate(blocks):
        if block.get("type") == "tool_result" and block["tool_use_id"] not in previous_uses:
            raise InvalidRequest(
                f"{where}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )


def _missing_results(i: int, ids: list[str]) -> InvalidRequest:
    return InvalidRequest(
        f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
        f"after: {', '.join(ids)}. Each `tool_use` block must have a corresponding "
        "`tool_result` block in the next message."
    )


def _block(block: Any, where: str, role: str, markers: _Markers) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequest(f"{where}: Input should be a content block object with a `type`")
    kind = block["type"]
    markers.check(block, where)
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}.text: Input should be a valid string")
        if not text:
            raise InvalidRequest(f"{where}: text content blocks must be non-empty")
    elif kind in ("image", "document"):
        if not isinstance(block.get("source"), dict):
            raise InvalidRequest(f"{where}.{kind}.source: Field required")
    elif kind == "tool_use":
        if role != "assistant":
            raise InvalidRequest(f"{where}: `tool_use` blocks can only be in `assistant` messages")
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise InvalidRequest(f"{where}.tool_use: `id` and `name` must be strings")
        if not isinstance(block.get("input"), dict):
            raise InvalidRequest(f"{where}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if role != "user":
            raise InvalidRequest(f"{where}: `tool_result` blocks can only be in `user` messages")
        if not isinstance(block.get("tool_use_id"), str):
            raise InvalidRequest(f"{where}.tool_result.tool_use_id: Field required")
        content = block.get("content")
        if isinstance(content, list):
            for k, inner in enumerate(content):
                _block(inner, f"{where}.content.{k}", role, markers)
        elif content is not None and not isinstance(content, str):
            raise InvalidRequest(f"{where}.tool_result.content: Input should be a string or list")
    elif kind == "thinking":
        if not isinstance(block.get("thinking"), str) or not isinstance(
            block.get("signature"), str
        ):
            raise InvalidRequest(f"{where}.thinking: `thinking` and `signature` must be strings")
    elif kind == "redacted_thinking" and not isinstance(block.get("data"), str):
        raise InvalidRequest(f"{where}.redacted_thinking.data: Field required")


def _system(doc: dict[str, Any], markers: _Markers) -> Any:
    system = doc.get("system")
    if system is None or isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a valid string or list of text blocks")
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"system.{j}.type: Input should be 'text'")
        _block(block, f"system.{j}", "system", markers)
    return system


def _tools(doc: dict[str, Any], markers: _Markers) -> tuple[ToolSpec, ...]:
    tools = doc.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{where}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise InvalidRequest(
                f"{where}.name: String should match pattern '{_TOOL_NAME.pattern}'"
            )
        if tool.get("type") in (None, "custom"):
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise InvalidRequest(f"{where}.custom.input_schema: Field required")
            if schema.get("type") != "object":
                raise InvalidRequest(f"{where}.custom.input_schema.type: Input should be 'object'")
        elif not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"{where}.type: Input should be a valid string")
        markers.check(tool, where)
        specs.append(ToolSpec(name, tool.get("input_schema")))
    if len({s.name for s in specs}) != len(specs):
        raise InvalidRequest("tools: Tool names must be unique.")
    return tuple(specs)


def _tool_choice(doc: dict[str, Any], tools: tuple[ToolSpec, ...]) -> tuple[ToolChoice, str | None]:
    choice = doc.get("tool_choice")
    if choice is None:
        return "auto", None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise InvalidRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not tools:
        raise InvalidRequest("tool_choice may only be specified while providing tools")
    if kind != "tool":
        return kind, None
    name = choice.get("name")
    if not isinstance(name, str):
        raise InvalidRequest("tool_choice.tool.name: Field required")
    if all(t.name != name for t in tools):
        raise InvalidRequest(f"tool_choice.tool.name: Tool '{name}' not found in `tools`")
    return "tool", name


def _thinking(doc: dict[str, Any], max_tokens: int, choice: ToolChoice) -> int | None:
    thinking = doc.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        raise InvalidRequest("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if kind == "disabled":
        return None
    if choice in ("any", "tool"):
        raise InvalidRequest("Thinking may not be enabled when tool_choice forces tool use.")
    if kind == "adaptive":
        return max_tokens - 1
    budget = thinking.get("budget_tokens")
    if not is_int(budget):
        raise InvalidRequest("thinking.enabled.budget_tokens: Field required")
    if budget < MIN_THINKING_BUDGET:
        raise InvalidRequest(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to "
            f"{MIN_THINKING_BUDGET}"
        )
    if budget >= max_tokens:
        raise InvalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return int(budget)


def _sampling(doc: dict[str, Any]) -> None:
    for key in ("temperature", "top_p"):
        value = doc.get(key)
        if value is not None and (not is_number(value) or not 0 <= value <= 1):
            raise InvalidRequest(f"{key}: Input should be a number between 0 and 1")
    top_k = doc.get("top_k")
    if top_k is not None and (not is_int(top_k) or top_k < 0):
        raise InvalidRequest("top_k: Input should be an integer >= 0")


def _output_schema(doc: dict[str, Any]) -> Any:
    config = doc.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else doc.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
    return None


def _latest_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return _text_of(message["content"])
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for block in content:
        if block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "tool_result" and block.get("content"):
            texts.append(_text_of(block["content"]))
    return "\n".join(texts)
