"""What a route's variant changes in a request (stages/shape/variant_request.py), written
once per wire format: the system prompt, the tools, the prompt-cache breakpoints.

Every function returns a new top-level document and never mutates what it was given (the
client's parsed body, the config's tool list): a variant's edits are shared by every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from tollhouse.wire.anthropic_openai.requests import anthropic_tool_to_openai

SystemMode = Literal["replace", "prepend", "append"]
_EPHEMERAL = {"type": "ephemeral"}


def _joined(mode: SystemMode, text: str, current: str) -> str:
    if mode == "replace" or not current:
        return text
    return f"{text}\n\n{current}" if mode == "prepend" else f"{current}\n\n{text}"


# Anthropic Messages ---------------------------------------------------------------------


def anthropic_system(body: dict[str, Any], mode: SystemMode, text: str) -> dict[str, Any]:
    """`system` replaced by `text`, or `text` put before or after it (a string or a list
    of blocks, kept in its own shape)."""
    current = body.get("system")
    if isinstance(current, list) and current and mode != "replace":
        block = {"type": "text", "text": text}
        blocks = [block, *current] if mode == "prepend" else [*current, block]
        return {**body, "system": blocks}
    return {**body, "system": _joined(mode, text, current if isinstance(current, str) else "")}


def anthropic_tools(body: dict[str, Any], tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {**body, "tools": [dict(tool) for tool in tools]}


def anthropic_cache_breakpoints(body: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
    """A `cache_control: ephemeral` breakpoint on the last block of each place named (the
    system prompt, the tool list, the last message), where that place is present."""
    out = dict(body)
    if "system" in places and body.get("system"):
        system = body["system"]
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        out["system"] = _marked_last(blocks)
    if "tools" in places and isinstance(body.get("tools"), list) and body["tools"]:
        out["tools"] = _marked_last(list(body["tools"]))
    messages = body.get("messages")
    if "last_message" in places and isinstance(messages, list) and messages:
        last = messages[-1]
        if isinstance(last, dict) and last.get("content"):
            content = last["content"]
            blocks = (
                [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            )
            out["messages"] = [*messages[:-1], {**last, "content": _marked_last(blocks)}]
    return out


def _marked_last(blocks: list[Any]) -> list[Any]:
    if isinstance(blocks[-1], dict):
        blocks[-1] = {**blocks[-1], "cache_control": dict(_EPHEMERAL)}
    return blocks


# OpenAI Chat Completions ----------------------------------------------------------------

_SYSTEM_ROLES = ("system", "developer")


def openai_system(body: dict[str, Any], mode: SystemMode, text: str) -> dict[str, Any]:
    """The leading system (or developer) message replaced by `text` (every one of them,
    for `replace`), or `text` put before or after its content; a new one first when the
    request has none."""
    messages = list(body.get("messages") or ())
    if mode == "replace":
        kept = [m for m in messages if not (isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES)]
        return {**body, "messages": [{"role": "system", "content": text}, *kept]}
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") in _SYSTEM_ROLES:
        content = first.get("content")
        if isinstance(content, list):
            part = {"type": "text", "text": text}
            parts = [part, *content] if mode == "prepend" else [*content, part]
            messages[0] = {**first, "content": parts}
        else:
            messages[0] = {**first, "content": _joined(mode, text, str(content or ""))}
    else:
        messages.insert(0, {"role": "system", "content": text})
    return {**body, "messages": messages}


def openai_tools(body: dict[str, Any], tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {**body, "tools": [anthropic_tool_to_openai(tool, i) for i, tool in enumerate(tools)]}
