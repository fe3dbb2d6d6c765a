"""The types at the gateway's boundary, which every layer shares: the low module.

- `WireFormat`: the wire formats a client or an upstream speaks (Anthropic Messages, OpenAI
  Chat Completions, OpenAI Responses).
- `Reply`: what a stage hands back to the HTTP layer, a whole body or a stream of chunks.
- `AdmissionTicket`: what an admitted call carries until it ends (made by stages/admit.py).

It imports nothing of the gateway at run time, so any module may import it without a cycle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

if TYPE_CHECKING:
    from tollhouse.ports.counters import Reservation

WireFormat = Literal["anthropic", "openai", "responses"]

Header = tuple[bytes, bytes]  # one HTTP header, name and value encoded

JSON_CONTENT_TYPE = b"application/json"
SSE_CONTENT_TYPE = b"text/event-stream; charset=utf-8"


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    content_type: bytes = JSON_CONTENT_TYPE
    headers: list[Header] = field(default_factory=list)

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name.encode("latin-1"), value.encode("latin-1")))


def json_reply(doc: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=orjson.dumps(doc))


class AdmissionTicket(Protocol):
    """An admitted call's reservation (to settle or release when it ends) and the
    rate-limit headers its reply carries."""

    @property
    def reservation(self) -> Reservation: ...

    @property
    def headers(self) -> list[Header]: ...
