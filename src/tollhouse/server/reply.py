"""What a stage hands back to the HTTP layer: a whole body or a stream of chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_CONTENT_TYPE = b"application/json"
SSE_CONTENT_TYPE = b"text/event-stream; charset=utf-8"


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    content_type: bytes = JSON_CONTENT_TYPE
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name.encode("latin-1"), value.encode("latin-1")))


def json_reply(doc: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=orjson.dumps(doc))
