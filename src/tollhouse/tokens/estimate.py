"""A documented, deterministic token estimate used wherever no provider count exists.

Rule: one token per 4 UTF-8 bytes of text, rounded up, at least 1 for non-empty text; each
message adds 4 tokens of framing, a system prompt 4, each tool definition 8 plus its JSON,
each image a flat 1,600 (the cost Anthropic documents for a ~1.15 megapixel image). The
simulator reports usage by the same rule, so its usage is consistent with its text, and the
gateway uses it for `count_tokens` on routes whose provider has no such endpoint and for
admission estimates before a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

IMAGE_TOKENS = 1600
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 8


def text_tokens(text: str) -> int:
    return _bytes_tokens(_utf8_size(text)) if text else 0


def _utf8_size(text: str) -> int:
    # An ASCII string is its own UTF-8, and `isascii` reads a flag: a large prompt is not
    # encoded just to be measured.
    return len(text) if text.isascii() else len(text.encode())


def _bytes_tokens(size: int) -> int:
    return max(1, (size + 3) // 4) if size else 0


class GeneratedText:
    """Text generated so far, counted by the rule of `text_tokens` without being kept, so
    that a stream's output estimate costs a counter however long the stream runs.
    `tokens` equals `text_tokens` of all the pieces added, joined."""

    __slots__ = ("_size",)

    def __init__(self) -> None:
        self._size = 0

    def add(self, piece: str) -> None:
        self._size += _utf8_size(piece)

    @property
    def tokens(self) -> int:
        return _bytes_tokens(self._size)


def content_tokens(content: Any) -> int:
    """Tokens of a message `content` in either wire format (string or list of parts)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        return sum(_part_tokens(part) for part in content)
    if isinstance(content, dict):
        return _part_tokens(content)
    return text_tokens(str(content))


def _part_tokens(part: Any) -> int:
    if not isinstance(part, dict):
        return text_tokens(str(part))
    kind = part.get("type")
    if kind in ("image", "image_url", "input_image", "document"):
        return IMAGE_TOKENS
    if kind == "text" or "text" in part:
        return text_tokens(str(part.get("text", "")))
    if kind == "tool_use":
        return text_tokens(str(part.get("name", ""))) + text_tokens(
            orjson.dumps(part.get("input", {})).decode()
        )
    if kind == "tool_result":
        return content_tokens(part.get("content"))
    if kind in ("thinking", "redacted_thinking"):
        return text_tokens(str(part.get("thinking", part.get("data", ""))))
    return text_tokens(orjson.dumps(part).decode())


def _item_tokens(item: Any) -> int:
    """Tokens of one Responses input item: a message's content, a tool call's name and
    arguments, a tool result's output."""
    if not isinstance(item, dict):
        return text_tokens(str(item))
    kind = item.get("type", "message")
    if kind == "message":
        return content_tokens(item.get("content"))
    if kind == "function_call":
        return text_tokens(str(item.get("name", ""))) + text_tokens(str(item.get("arguments", "")))
    if kind == "function_call_output":
        return content_tokens(item.get("output"))
    return 0


def message_tokens(message: Any) -> int:
    """Estimated tokens of one Messages or Chat Completions message, framing included: its
    part of `request_input_tokens` (0 for what is not a message)."""
    if not isinstance(message, dict):
        return 0
    total = MESSAGE_OVERHEAD + content_tokens(message.get("content"))
    if message.get("tool_calls"):
        total += text_tokens(orjson.dumps(message["tool_calls"]).decode())
    return total


def request_input_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of a Messages, Chat Completions, Responses or Embeddings
    request body (Responses: `instructions` counts as a system prompt, each `input` item as a
    message)."""
    total = 0
    for key in ("system", "instructions"):
        system = body.get(key)
        if system:
            total += MESSAGE_OVERHEAD + content_tokens(system)
    items = body.get("input")
    if isinstance(items, str):
        total += MESSAGE_OVERHEAD + text_tokens(items)
    elif isinstance(items, list):
        total += sum(MESSAGE_OVERHEAD + _item_tokens(item) for item in items)
    total += sum(message_tokens(message) for message in body.get("messages") or [])
    for tool in body.get("tools") or []:
        total += TOOL_OVERHEAD + text_tokens(orjson.dumps(tool).decode())
    total += embedding_input_tokens(body.get("input"))
    return max(total, 1)


def embedding_input_tokens(value: object) -> int:
    """Estimated tokens of an embeddings request's `input` (0 for none): text estimated, a
    token id counted as one."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    total = 0
    for item in items:
        if isinstance(item, str):
            total += text_tokens(item)
        elif isinstance(item, list):
            total += len(item)
        elif isinstance(item, int):
            total += 1
    return total


@dataclass(frozen=True, slots=True)
class PrefixItem:
    """One element of an Anthropic Messages request in the order the API reads the prompt
    for its cache: each tool, then each system block, then each block of each message.

    `where` and `index` locate it (`index`: the tool, the system block, the message);
    `block` is the block's place in its message (0 for a string content, which is `item`
    then); `role` is the message's ("system" for the system prompt, None for a tool);
    `tokens` is the estimate of the prompt from its start through this element, by the
    rule of this module, so that a prefix's length reads the same to the gateway placing
    breakpoints and to the simulator caching them."""

    where: Literal["tools", "system", "messages"]
    index: int
    block: int
    item: Any
    role: str | None
    tokens: int


def anthropic_prompt_prefix(body: dict[str, Any]) -> Iterator[PrefixItem]:
    """The elements of a Messages request `body`, in cache order, with their running token
    estimate. Malformed parts (a message that is not an object) are skipped."""
    tokens = 0
    for i, tool in enumerate(body.get("tools") or ()):
        tokens += TOOL_OVERHEAD + text_tokens(orjson.dumps(tool).decode())
        yield PrefixItem("tools", i, 0, tool, None, tokens)
    system = body.get("system")
    if system:
        tokens += MESSAGE_OVERHEAD
        if isinstance(system, str):
            tokens += text_tokens(system)
            yield PrefixItem("system", 0, 0, system, "system", tokens)
        elif isinstance(system, list):
            for j, block in enumerate(system):
                tokens += content_tokens([block])
                yield PrefixItem("system", j, j, block, "system", tokens)
    for i, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        tokens += MESSAGE_OVERHEAD
        role = str(message.get("role"))
        content = message.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                tokens += content_tokens([block])
                yield PrefixItem("messages", i, j, block, role, tokens)
        else:
            tokens += content_tokens(content)
            yield PrefixItem("messages", i, 0, content, role, tokens)
