"""Reading request bodies so that slow clients can't hold the gateway.

A body is read before its call takes an in-flight slot, so a client that sends its body
slowly (or never finishes it) holds a connection, not a slot; the HTTP protocol answers it
408 once `server.body_timeout` passes. Bodies being read are bounded per owner (the gateway
key, or the client's address on an open gateway) and in total bytes, so neither one tenant
nor many half-sent bodies can pin the gateway's memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tollhouse.errors import Overloaded, RateLimited, RequestTooLarge, TollhouseError

Receive = Callable[[], Awaitable[dict[str, Any]]]

CLIENT_CLOSED = 499  # nginx's status for a client that left before its answer was sent


class ClientDisconnected(TollhouseError):
    """The client went away before its request was read; the answer goes nowhere."""

    status = CLIENT_CLOSED


class BodyReader:
    """At most `per_owner` bodies of one owner read at once (past it, 429) and
    `max_partial_bytes` held in all by bodies not yet whole (past it, 529/503). A body
    that arrives whole with the first read counts against neither; one whose first bytes
    have not come yet waits under the protocol's deadline alone."""

    def __init__(self, per_owner: int, max_partial_bytes: int) -> None:
        self.per_owner = per_owner
        self.max_partial_bytes = max_partial_bytes
        self.partial_bytes = 0
        self._reading: dict[str, int] = {}

    async def read(
        self, receive: Receive, headers: dict[str, str], owner: str, limit: int
    ) -> bytes:
        """The whole body, at most `limit` bytes (else 413)."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(
                f"request body of {declared} bytes exceeds the limit of {limit} bytes"
            )
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _disconnected()
        first: bytes = message.get("body", b"")
        if len(first) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return first  # whole in its first message: the usual case, nothing to bound
        reading = self._reading.get(owner, 0)
        if reading >= self.per_owner:
            raise RateLimited(
                f"{reading} request bodies of this key are being received at once, the limit "
                "(limits.max_body_reads_per_key); retry when they are in",
                headers={"retry-after": "1"},
            )
        self._reading[owner] = reading + 1
        try:
            return await self._read_rest(receive, first, limit)
        finally:
            remaining = self._reading[owner] - 1
            if remaining:
                self._reading[owner] = remaining
            else:
                del self._reading[owner]

    async def _read_rest(self, receive: Receive, first: bytes, limit: int) -> bytes:
        chunks = [first]
        held = 0  # this body's bytes counted in partial_bytes
        try:
            chunk = first
            more = True
            while more:
                held += len(chunk)
                self.partial_bytes += len(chunk)
                if held > limit:
                    raise _too_large(limit)
                if self.partial_bytes > self.max_partial_bytes:
                    raise Overloaded(
                        f"the gateway holds {self.max_partial_bytes} bytes of request bodies "
                        "still being received (limits.max_partial_body_bytes); retry shortly",
                        headers={"retry-after": "1"},
                    )
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _disconnected()
                chunk = message.get("body", b"")
                chunks.append(chunk)
                more = message.get("more_body", False)
            if held + len(chunk) > limit:
                raise _too_large(limit)
            return b"".join(chunks)
        finally:
            self.partial_bytes -= held


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body exceeds the limit of {limit} bytes")


def _disconnected() -> ClientDisconnected:
    return ClientDisconnected("client disconnected before sending its whole request")
