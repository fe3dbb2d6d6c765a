"""A streamed Anthropic message put back together from its events, as the whole message it
would have been: for the gateway to keep a streamed turn of a conversation it holds.

Fed the decoded data of each event in order; `message` is the whole message once
`message_stop` arrived, None before (or when the stream broke off). Deltas are joined the
way the SDK's own stream accumulator joins them: text, a tool's input JSON (parsed at the
block's end), thinking and its signature, citations. `size` is about the bytes of content
it holds (the text of the deltas joined), for a caller to bound what it keeps.
"""

from __future__ import annotations

from typing import Any

import orjson


class AnthropicMessageAssembly:
    __slots__ = ("_json", "_message", "done", "size")

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._json: dict[int, list[str]] = {}
        self.done = False
        self.size = 0

    @property
    def message(self) -> dict[str, Any] | None:
        return self._message if self.done else None

    def feed(self, event: str | None, doc: Any) -> None:
        """One event: its name (`message_start`, ...) and its decoded data."""
        if not isinstance(doc, dict):
            return
        kind = doc.get("type", event)
        if kind == "message_start":
            message = doc.get("message")
            if isinstance(message, dict):
                self._message = {**message, "content": list(message.get("content") or [])}
            return
        message = self._message
        if message is None:
            return
        content: list[dict[str, Any]] = message["content"]
        index = doc.get("index")
        if kind == "content_block_start" and isinstance(doc.get("content_block"), dict):
            content.append(dict(doc["content_block"]))
        elif kind == "content_block_delta" and isinstance(index, int) and index < len(content):
            self._apply_delta(index, content[index], doc.get("delta") or {})
        elif kind == "content_block_stop" and isinstance(index, int) and index in self._json:
            text = "".join(self._json.pop(index))
            try:
                content[index]["input"] = orjson.loads(text) if text.strip() else {}
            except orjson.JSONDecodeError:  # a cut tool input: kept as the client saw it
                content[index]["input"] = {}
        elif kind == "message_delta":
            delta = doc.get("delta") or {}
            for key in ("stop_reason", "stop_sequence", "container"):
                if key in delta:
                    message[key] = delta[key]
            if isinstance(doc.get("usage"), dict):
                message["usage"] = {**(message.get("usage") or {}), **doc["usage"]}
        elif kind == "message_stop":
            self.done = True

    def _apply_delta(self, index: int, block: dict[str, Any], delta: dict[str, Any]) -> None:
        kind = delta.get("type")
        if kind == "text_delta":
            text = str(delta.get("text", ""))
            block["text"] = block.get("text", "") + text
        elif kind == "input_json_delta":
            text = str(delta.get("partial_json", ""))
            self._json.setdefault(index, []).append(text)
        elif kind == "thinking_delta":
            text = str(delta.get("thinking", ""))
            block["thinking"] = block.get("thinking", "") + text
        elif kind == "signature_delta":
            text = block["signature"] = str(delta.get("signature", ""))
        elif kind == "citations_delta" and "citation" in delta:
            block["citations"] = [*(block.get("citations") or []), delta["citation"]]
            text = str(delta["citation"])
        else:
            return
        self.size += len(text)
