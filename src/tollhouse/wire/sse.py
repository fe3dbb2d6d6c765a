"""Server-sent events: incremental parsing of an upstream stream and framing of our own.

The parser is fed raw chunks exactly as they arrive from the network (events may be split
across chunks or several may share one) and yields whole events; nothing waits for the end
of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return orjson.loads(self.data)


class SSEParser:
    """Incremental SSE parser (WHATWG rules for `event:` and `data:` fields)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n\n" not in buf:
            self._buffer = buf
            return []
        blocks = buf.split(b"\n\n")
        self._buffer = blocks.pop()
        events: list[SSEEvent] = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """Whatever complete event is left when the stream ends without a final blank line."""
        block, self._buffer = self._buffer, b""
        event = _parse_block(block.rstrip(b"\n")) if block.strip() else None
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    # Fast paths for the two shapes providers send: `data: …` and `event: …\ndata: …`.
    if block.startswith(b"data: ") and b"\n" not in block:
        return SSEEvent(None, block[6:].decode())
    if block.startswith(b"event: "):
        newline = block.find(b"\n")
        if (
            newline > 0
            and block.startswith(b"data: ", newline + 1)
            and block.find(b"\n", newline + 1) < 0
        ):
            return SSEEvent(block[7:newline].decode(), block[newline + 7 :].decode())
    return _parse_block_fields(block)


def _parse_block_fields(block: bytes) -> SSEEvent | None:
    """The general case: comments, several data lines, fields without a space."""
    name: str | None = None
    data: list[str] = []
    for raw in block.split(b"\n"):
        if not raw or raw.startswith(b":"):
            continue
        field, _, value = raw.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode()
        elif field == b"data":
            data.append(value.decode())
    if name is None and not data:
        return None
    return SSEEvent(name, "\n".join(data))


def frame_event(event: str | None, data: bytes | str) -> bytes:
    """One SSE event on the wire; `data` is a single line (JSON, or `[DONE]`)."""
    payload = data.encode() if isinstance(data, str) else data
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def frame_json(event: str | None, doc: Any) -> bytes:
    return frame_event(event, orjson.dumps(doc))
