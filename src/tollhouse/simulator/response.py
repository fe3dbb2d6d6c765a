"""The simulator's answer behind the `UpstreamResponse` interface of `providers.base`.

A whole answer is decided up front (it costs microseconds); a stream is then *released*
event by event at the configured pace: the first token after the time to first token, each
later delta after its tokens / tokens_per_second. Unpaced events are handed over together
in one chunk, since nobody waits between them. A mid-stream fault cuts the stream after a
number of events, with the format's error event or a broken connection
(`UpstreamConnectionError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tollhouse.providers.base import UpstreamConnectionError


class StreamEvent(NamedTuple):
    frame: bytes
    tokens: int
    """Tokens of output this event carries; 0 for framing events, which are not paced."""


@dataclass(frozen=True, slots=True)
class Pace:
    ttft_s: float = 0.0
    tokens_per_second: float = 0.0

    def generation_s(self, tokens: int) -> float:
        return tokens / self.tokens_per_second if self.tokens_per_second > 0 else 0.0


@dataclass(frozen=True, slots=True)
class StreamBreak:
    after_events: int
    error_frame: bytes | None
    """The error event that ends the stream; None: the connection breaks instead."""


class SimResponse:
    """Implements `tollhouse.providers.base.UpstreamResponse`; header names are lower-case."""

    __slots__ = (
        "_body",
        "_body_reset",
        "_break",
        "_closed",
        "_events",
        "_pace",
        "headers",
        "status",
    )

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        events: Sequence[StreamEvent] | None = None,
        pace: Pace | None = None,
        stream_break: StreamBreak | None = None,
        body_reset: bool = False,
    ) -> None:
        self.status = status
        self.headers: Mapping[str, str] = headers
        self._body = body
        self._events = events
        self._pace = pace or Pace()
        self._break = stream_break
        self._body_reset = body_reset
        self._closed = False

    @property
    def is_stream(self) -> bool:
        return self._events is not None

    async def read(self) -> bytes:
        if self._events is None:
            if self._body_reset:
                raise UpstreamConnectionError("simulated connection reset before the body")
            return self._body
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._events is None:
            yield await self.read()
            return
        events, pace, brk = self._events, self._pace, self._break
        stop_at = len(events) if brk is None else min(brk.after_events, len(events) - 1)
        pending: list[bytes] = []
        first_token = True
        for event in events[:stop_at]:
            if self._closed:
                return
            if event.tokens:
                delay = pace.generation_s(event.tokens)
                if first_token:
                    delay += pace.ttft_s
                    first_token = False
                if delay > 0:
                    if pending:
                        yield b"".join(pending)
                        pending = []
                    await asyncio.sleep(delay)
            pending.append(event.frame)
        if brk is not None and brk.error_frame is not None:
            pending.append(brk.error_frame)
        if pending:
            yield b"".join(pending)
        if brk is not None and brk.error_frame is None:
            raise UpstreamConnectionError("simulated connection reset mid-stream")

    async def aclose(self) -> None:
        self._closed = True
