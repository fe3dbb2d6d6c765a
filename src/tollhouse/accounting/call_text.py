"""The human-readable text of a call, for ledgers configured to keep it.

Prompt and answer are flattened to `role: text` lines, with placeholders for what is not
text (`[image]`, `[tool_use get_weather]`), so `tollhouse logs --search` and a person
reading a record see the conversation, not its JSON. Nothing here runs unless the ledger's
`text` setting is `redacted` or `full`; the caller scrubs the result before it is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from tollhouse.types import WireFormat
from tollhouse.wire.sse import SSEParser


def system_prompt_hash(body: dict[str, Any], fmt: WireFormat) -> str | None:
    """A short SHA-256 of the system prompt's text (None without one), so records can be
    grouped by prompt version without storing the prompt. Text only: the same prompt with
    or without cache breakpoints hashes the same."""
    if fmt == "anthropic":
        system = body.get("system")
        text = _content_text(system) if system is not None else None
    else:
        parts = [
            _content_text(message.get("content"))
            for message in body.get("messages", ())
            if isinstance(message, dict) and message.get("role") in ("system", "developer")
        ]
        text = "\n".join(parts) if parts else None
    if text is None:
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def prompt_text(body: dict[str, Any], fmt: WireFormat) -> str:
    lines: list[str] = []
    if fmt == "anthropic" and body.get("system") is not None:
        lines.append(f"system: {_content_text(body['system'])}")
    for message in body.get("messages", ()):
        if isinstance(message, dict):
            lines.append(f"{message.get('role', '?')}: {_content_text(message.get('content'))}")
    return "\n".join(lines)


def answer_text(answer: bytes, fmt: WireFormat, *, stream: bool) -> str:
    """The assistant's text from a whole answer body or the bytes of its SSE stream."""
    if stream:
        return "".join(_stream_text(answer, fmt))
    try:
        doc = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(doc, dict):
        return ""
    if fmt == "anthropic":
        return _content_text(doc.get("content"))
    if "error" in doc:
        return ""
    texts = []
    for choice in doc.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            texts.append(_content_text(message.get("content")))
            texts.extend(_tool_call_names(message.get("tool_calls")))
    return "\n".join(text for text in texts if text)


def _stream_text(data: bytes, fmt: WireFormat) -> Iterable[str]:
    parser = SSEParser()
    for event in [*parser.feed(bytes(data)), *parser.flush()]:
        try:
            doc = event.json()
        except (orjson.JSONDecodeError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        if fmt == "anthropic":
            if doc.get("type") == "content_block_delta":
                delta = doc.get("delta") or {}
                if delta.get("type") == "text_delta":
                    yield str(delta.get("text", ""))
            elif doc.get("type") == "content_block_start":
                block = doc.get("content_block") or {}
                if block.get("type") == "tool_use":
                    yield f"[tool_use {block.get('name', '')}]"
            continue
        for choice in doc.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str):
                    yield content
                yield from _tool_call_names(delta.get("tool_calls"))


def _tool_call_names(tool_calls: Any) -> list[str]:
    names = []
    for call in tool_calls or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and function.get("name"):
            names.append(f"[tool_use {function['name']}]")
    return names


def _content_text(content: Any) -> str:
    """A message's content (a string or a list of blocks/parts) as one string."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(content)
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
            continue
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" or (kind is None and "text" in block):
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(f"[tool_use {block.get('name', '')}]")
        elif kind == "tool_result":
            parts.append(f"[tool_result] {_content_text(block.get('content'))}".rstrip())
        elif kind in ("image", "image_url", "input_image"):
            parts.append("[image]")
        elif kind in ("document", "file", "input_file"):
            parts.append("[document]")
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            parts.append(f"[{kind}]")
    return " ".join(part for part in parts if part)
