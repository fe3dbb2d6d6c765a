"""The simulator's answer behind the `UpstreamResponse` interface of `providers.base`.

A whole answer is decided up front (it costs microseconds); a stream's events are then made
one by one as they are *released*, at the configured pace: the first token after the time to
first token, each later delta after its tokens / tokens_per_second. So a very long streamed
answer sends its first bytes at once, and never holds more than a chunk of its events.
Unpaced events are handed over together, in chunks of up to `_CHUNK_BYTES`, since nobody
waits between them. A mid-stream fault cuts the stream after a number of events, with the
format's error event or a broken connection (`UpstreamConnectionError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tollhouse.providers.base import UpstreamConnectionError

# Unpaced events are joined up to this size: few sends, bounded memory.
_CHUNK_BYTES = 64 * 1024


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
    """Implements `tollhouse.providers.base.UpstreamResponse`; header names are lower-case.
    A stream's `events` are read once, as they are released (a body is read once too)."""

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
        events: Iterable[StreamEvent] | None = None,
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
        pace, brk = self._pace, self._break
        events = self._events if brk is None else _before_break(self._events, brk.after_events)
        pending: list[bytes] = []
        pending_bytes = 0
        first_token = True
        for event in events:
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
                        pending, pending_bytes = [], 0
                    await asyncio.sleep(delay)
            pending.append(event.frame)
            pending_bytes += len(event.frame)
            if pending_bytes >= _CHUNK_BYTES:
                yield b"".join(pending)
                pending, pending_bytes = [], 0
        if brk is not None and brk.error_frame is not None:
            pending.append(brk.error_frame)
        if pending:
            yield b"".join(pending)
        if brk is not None and brk.error_frame is None:
            raise UpstreamConnectionError("simulated connection reset mid-stream")

    async def aclose(self) -> None:
        self._closed = True


def _before_break(events: Iterable[StreamEvent], after: int) -> Iterator[StreamEvent]:
    """The first `after` events, but never the last one: a broken stream always misses its
    end. One event is looked ahead to know whether it is the last."""
    ahead = iter(events)
    previous = next(ahead, None)
    if previous is None:
        return
    for sent, event in enumerate(ahead):
        if sent >= after:
            return
        yield previous
        previous = event


def merge_usage(usage: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`usage` with `extra` merged over it, detail objects key by key."""
    merged = dict(usage)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
