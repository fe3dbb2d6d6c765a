"""What a route's variant changes in a request (stages/shape/variant_request.py), written
once per wire format: the system prompt, the tools, the prompt-cache breakpoints.

Every function returns a new top-level document and never mutates what it was given (the
client's parsed body, the config's tool list): a variant's edits are shared by every call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tollhouse.tokens.estimate import anthropic_prompt_prefix
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


# Where a breakpoint goes: (`where`, `index`, `block`) as tokens.estimate.PrefixItem says.
CacheSpot = tuple[str, int, int]
MAX_CACHE_BREAKPOINTS = 4  # the Messages API refuses a request with more


def anthropic_cache_markers(body: dict[str, Any]) -> list[tuple[CacheSpot, dict[str, Any]]]:
    """The `cache_control` markers `body` carries on its tools and blocks, in cache order."""
    return [
        ((item.where, item.index, item.block), item.item["cache_control"])
        for item in anthropic_prompt_prefix(body)
        if isinstance(item.item, dict) and item.item.get("cache_control")
    ]


def anthropic_breakpoints_used(body: dict[str, Any]) -> int:
    """How many of the 4 breakpoints `body` uses: its markers, and the top-level
    `cache_control` of automatic caching, which takes one."""
    return len(anthropic_cache_markers(body)) + (1 if body.get("cache_control") else 0)


def anthropic_with_markers(
    body: dict[str, Any], markers: Mapping[CacheSpot, dict[str, Any]]
) -> dict[str, Any]:
    """`body` with `cache_control: markers[spot]` on the element at each spot (a string
    system prompt or message content becomes one text block to carry it). An element that
    already has a marker keeps its own: a client's breakpoint is never changed."""
    if not markers:
        return body
    out = dict(body)
    tools = [spot[1] for spot in markers if spot[0] == "tools"]
    if tools:
        out["tools"] = listed = list(body["tools"])
        for i in tools:
            listed[i] = _marked(listed[i], markers[("tools", i, 0)])
    system = [spot[1] for spot in markers if spot[0] == "system"]
    if system:
        current = body["system"]
        out["system"] = blocks = _as_blocks(current)
        for j in system:
            blocks[j] = _marked(blocks[j], markers[("system", j, j)])
    by_message: dict[int, list[int]] = {}
    for where, i, j in markers:
        if where == "messages":
            by_message.setdefault(i, []).append(j)
    if by_message:
        out["messages"] = messages = list(body["messages"])
        for i, places in by_message.items():
            message = messages[i]
            content = _as_blocks(message["content"])
            for j in places:
                content[j] = _marked(content[j], markers[("messages", i, j)])
            messages[i] = {**message, "content": content}
    return out


def anthropic_cache_breakpoints(body: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
    """A `cache_control: ephemeral` breakpoint on the last block of each place named (the
    system prompt, the tool list, the last message), where that place is present, as long
    as the request's breakpoints stay within the API's 4 (the places first in `places`
    first). A place whose last block is marked already keeps its marker."""
    last: dict[str, CacheSpot] = {}
    final = len(body.get("messages") or ()) - 1
    for item in anthropic_prompt_prefix(body):
        if item.where != "messages":
            last[item.where] = (item.where, item.index, item.block)
        elif item.index == final and item.item:
            last["last_message"] = (item.where, item.index, item.block)
    room = MAX_CACHE_BREAKPOINTS - anthropic_breakpoints_used(body)
    marked = {spot for spot, _ in anthropic_cache_markers(body)}
    markers: dict[CacheSpot, dict[str, Any]] = {}
    for place in places:
        spot = last.get(place)
        if spot is None or spot in marked or spot in markers or len(markers) >= room:
            continue
        markers[spot] = dict(_EPHEMERAL)
    return anthropic_with_markers(body, markers)


def _as_blocks(content: Any) -> list[Any]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _marked(element: Any, marker: dict[str, Any]) -> Any:
    if not isinstance(element, dict) or element.get("cache_control"):
        return element
    return {**element, "cache_control": dict(marker)}


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
