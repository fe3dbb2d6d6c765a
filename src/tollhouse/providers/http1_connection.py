"""One keep-alive HTTP/1.1 connection to an upstream, and the response read from it.

A plain asyncio protocol fed to httptools' response parser (llhttp, the parser of Node.js):
the body is handed to the reader chunk by chunk as the socket delivers it. A streamed body
applies back-pressure: while more than `_HIGH_WATER` bytes of it wait for a consumer that
does not pull (a slow or stalled client), the socket is not read, so the upstream's own
flow control holds the rest and memory per stream stays bounded; reading resumes once the
consumer has drained it below `_LOW_WATER`. A body read whole is never paused (it is wanted
whole, and nothing else would resume it). This replaced aiohttp on the request path, where
the client was measured as the largest cost per call (see bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools

from tollhouse.providers.base import UpstreamConnectionError, UpstreamTimeoutError

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


class Http1Connection(asyncio.Protocol):
    """Carries one request at a time; `served` counts the responses it completed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: Http1Response | None = None
        self.closed = False
        self.served = 0
        self.reading_paused = False
        self._gone: asyncio.Future[None] = loop.create_future()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"upstream sent malformed HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._gone.done():
            self._gone.set_result(None)
        response = self._response
        if response is None or response.complete:
            return
        if response.status and response.reads_to_eof:
            response.on_complete(keep_alive=False)
        else:
            response.on_error(
                UpstreamConnectionError("upstream closed the connection mid-response")
            )

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._response is not None:
            self._response.add_header(name, value)

    def on_headers_complete(self) -> None:
        if self._response is not None:
            self._response.on_headers(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response.on_body(body)

    def on_message_complete(self) -> None:
        if self._response is not None:
            self.served += 1
            self._response.on_complete(keep_alive=self._parser.should_keep_alive())

    # used by the pool and the transport

    def start(
        self,
        payload: bytes,
        read_idle_timeout: float | None,
        release: Callable[[Http1Connection, bool], None],
    ) -> Http1Response:
        response = Http1Response(self, self._loop, read_idle_timeout, release)
        self._response = response
        assert self.transport is not None
        self.transport.write(payload)
        return response

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def closed_within(self, grace: float) -> None:
        """Close, wait until the connection is gone, at most `grace` seconds, then abort it.
        A closed TLS connection lingers until the peer answers its close_notify (and through
        a proxy, so does the tunnel's socket): a loop that ended sooner would leave it open."""
        self.close()
        if not self._gone.done():
            await asyncio.wait((self._gone,), timeout=grace)
        if not self._gone.done() and self.transport is not None:
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        if self._response is not None and not self._response.complete:
            self._response.on_error(error)


class Http1Response:
    """Implements `UpstreamResponse`; the connection goes back to its pool when read out."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_error",
        "_headers_waiter",
        "_idle_timeout",
        "_keep_alive",
        "_loop",
        "_release",
        "_released",
        "_waiter",
        "_whole",
        "complete",
        "got_bytes",
        "headers",
        "status",
    )

    def __init__(
        self,
        conn: Http1Connection,
        loop: asyncio.AbstractEventLoop,
        idle_timeout: float | None,
        release: Callable[[Http1Connection, bool], None],
    ) -> None:
        self._conn = conn
        self._loop = loop
        self._idle_timeout = idle_timeout
        self._release = release
        self.status = 0
        self.headers: dict[str, str] = {}
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._headers_waiter: asyncio.Future[None] = loop.create_future()
        self._keep_alive = False
        self._released = False
        self._whole = False
        self.complete = False
        self.got_bytes = False

    @property
    def buffered(self) -> int:
        """Body bytes received and not yet taken by the reader."""
        return self._buffered

    @property
    def reads_to_eof(self) -> bool:
        """A body delimited by the end of the connection (no length, not chunked)."""
        return "content-length" not in self.headers and "transfer-encoding" not in self.headers

    # fed by the connection

    def add_header(self, name: bytes, value: bytes) -> None:
        self.got_bytes = True
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers(self, status: int) -> None:
        self.got_bytes = True
        self.status = status
        if not self._headers_waiter.done():
            self._headers_waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._whole:
            self._conn.pause_reading()
        self._wake()

    def on_complete(self, keep_alive: bool) -> None:
        self.complete = True
        self._keep_alive = keep_alive
        self._wake()

    def on_error(self, error: Exception) -> None:
        self._error = error
        if not self._headers_waiter.done():
            self._headers_waiter.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # used by the transport and the stages

    async def wait_headers(self) -> None:
        await self._headers_waiter

    async def read(self) -> bytes:
        self._whole = True
        self._conn.resume_reading()
        try:
            while not self.complete:
                if self._error is not None:
                    raise self._error
                await self._wait()
        except BaseException:
            await self._abandon()
            raise
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._finish()
        return body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= _LOW_WATER:
                    self._conn.resume_reading()
                yield chunk
            elif self.complete:
                self._finish()
                return
            elif self._error is not None:
                await self._abandon()
                raise self._error
            else:
                await self._wait()

    async def aclose(self) -> None:
        if self.complete:
            self._finish()
        else:
            await self._abandon()

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if self._idle_timeout is not None:
            timer = self._loop.call_later(self._idle_timeout, _expire, waiter, self._idle_timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _finish(self) -> None:
        if not self._released:
            self._released = True
            self._release(self._conn, self._keep_alive)

    async def _abandon(self) -> None:
        # Closing a half-read connection is how the upstream learns that nobody is listening,
        # so it stops generating (and billing) the rest of the answer.
        if not self._released:
            self._released = True
            self._conn.close()
            self._release(self._conn, False)


def _expire(waiter: asyncio.Future[None], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeoutError(f"upstream sent nothing for {seconds:g} s"))
