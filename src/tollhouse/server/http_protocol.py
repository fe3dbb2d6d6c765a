"""The gateway's HTTP/1.1 connections: uvicorn's httptools protocol, bounded for clients that
are slow or hostile on purpose.

- A request's head (request line and headers) must arrive within `header_timeout` of the
  connection opening or of the request's first byte, and its body within `body_timeout` of
  its head; past that the client gets 408 in its wire format (a connection that sent nothing
  is closed). Slowloris heads and never-ending bodies hold a connection for seconds, not
  forever.
- A head larger than `max_header_bytes` gets 431 before it is buffered whole.
- A request that is not HTTP gets 400 in JSON, not uvicorn's plain text.
- At `max_connections` open connections, the connection that has waited longest for a
  request (idle between requests, or still sending its head) is closed to make room; when
  none is waiting, the new connection is refused with 503.
- A client whose socket takes nothing for `write_idle_timeout` while an answer waits to be
  written is dropped. Until then the answer waits: uvicorn's `send` blocks while the
  transport's write buffer is above its high-water mark, so the relay (and the upstream read
  behind it) waits too, and no more than that buffer and a fixed kernel send buffer pile up
  per connection.

What the edge sheds is logged as structured warnings (observability/rate_limited_log.py: at
most one line per kind every few seconds, with the count held back). Deadlines are
checked by one timer per server every `tick` seconds instead of a timer per request, so a
request costs a few dict operations.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tollhouse.call import new_request_id
from tollhouse.config.model import GatewayConfig
from tollhouse.errors import (
    BadRequest,
    HeadersTooLarge,
    Overloaded,
    RequestTimeout,
    TollhouseError,
)
from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.server.client_format import guess_format
from tollhouse.wire.formats import FORMATS

log = logging.getLogger("tollhouse.server")

# A connection is in one phase at a time: opened and silent, sending a request head, sending
# its body, waiting for its answer, idle between requests (keep-alive), or refused and
# closing.
_OPENED, _HEAD, _BODY, _ANSWERING, _IDLE, _CLOSING = range(6)
_READING_HEAD = (_OPENED, _HEAD, _IDLE)
# How long a refused connection is read (and what it sends discarded) before it is closed:
# closing at once with unread input makes the kernel send a reset, which can destroy the
# refusal before the client reads it.
_LINGER = 1.0
# The kernel's send buffer per client connection (Linux doubles it for its bookkeeping).
# Autotuned, it grows to megabytes for a client that reads nothing, so a write would block,
# and the client be found idle, only after that much; fixed, a client that stops reading
# is seen within this much of its answer. An LLM answer needs no more at any realistic RTT.
_SEND_BUFFER = 64 * 1024

# The scope key of the refusal this protocol answered a request with while the app was
# reading its body: the app then sees a disconnect, and records the call as refused so.
REFUSED = "tollhouse.refused"


@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds of `GuardedHttpProtocol`; seconds and bytes."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1024
    write_idle_timeout: float = 120.0

    @classmethod
    def from_config(cls, config: GatewayConfig) -> ConnectionLimits:
        """`server.*` and `timeouts.read_idle`; with no `server.max_connections`, half the
        process's open-file limit (the other half is left for upstream connections, the
        ledger and the counters)."""
        server = config.server
        return cls(
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            max_header_bytes=server.max_header_bytes,
            max_connections=server.max_connections or _half_the_open_file_limit(),
            write_idle_timeout=config.timeouts.read_idle,
        )

    @property
    def tick(self) -> float:
        """How often deadlines are checked: a quarter of the shortest, at most a second."""
        shortest = min(self.header_timeout, self.body_timeout, self.write_idle_timeout)
        return max(0.01, min(1.0, shortest / 4))


def _half_the_open_file_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 1 << 16
    return max(1, soft // 2)


class ConnectionWatch:
    """One server's connections under deadline: read deadlines (head or body), write
    deadlines (answer blocked on a client that reads nothing), and the connections waiting
    for a request, oldest first, which may be closed to make room."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.reading: dict[GuardedHttpProtocol, float] = {}
        self.writing: dict[GuardedHttpProtocol, float] = {}
        self.waiting: dict[GuardedHttpProtocol, None] = {}
        self.log = RateLimitedLog(log)
        self._open = 0
        self._timer: asyncio.TimerHandle | None = None

    def opened(self, loop: asyncio.AbstractEventLoop) -> None:
        self._open += 1
        if self._timer is None:
            self._timer = loop.call_later(self.limits.tick, self._sweep, loop)

    def closed(self, connection: GuardedHttpProtocol) -> None:
        self._open -= 1
        self.reading.pop(connection, None)
        self.writing.pop(connection, None)
        self.waiting.pop(connection, None)

    def make_room(self, newcomer: GuardedHttpProtocol) -> bool:
        """Close the connection that has waited longest for a request; False if none is."""
        for connection in self.waiting:
            if connection is not newcomer:
                self.waiting.pop(connection)
                connection.transport.close()
                return True
        return False

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in [c for c, deadline in self.reading.items() if deadline <= now]:
            connection.read_timed_out()
        for connection in [c for c, deadline in self.writing.items() if deadline <= now]:
            connection.write_timed_out()
        self._timer = loop.call_later(self.limits.tick, self._sweep, loop) if self._open else None


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` with the bounds in this module's docstring; made for a
    server's limits by `guarded_protocol`."""

    watch: ClassVar[ConnectionWatch]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = b""
        self._phase = _OPENED
        self._head_bytes = 0  # bytes received while the head is incomplete (a memory bound)
        self._head_size = 0  # the head's own bytes (request target and headers)

    # --- connection events ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        watch = self.watch
        watch.opened(self.loop)
        limit = watch.limits.max_connections
        if len(self.connections) > limit:
            if watch.make_room(self):
                watch.log.event(
                    logging.WARNING,
                    "shedding_connections",
                    ("make_room",),
                    {"closed": "longest_waiting_for_a_request", **_at_limit(limit)},
                )
            else:
                watch.log.event(
                    logging.WARNING,
                    "shedding_connections",
                    ("refused",),
                    {"refused": "new_connection_503", **_at_limit(limit)},
                )
                self._refuse(
                    Overloaded(
                        f"the gateway is at its limit of {limit} open connections; retry shortly",
                        headers={"retry-after": "1"},
                    )
                )
                return
        watch.reading[self] = self.loop.time() + watch.limits.header_timeout
        watch.waiting[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.watch.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _CLOSING:
            return
        self._unset_keepalive_if_required()
        if self._phase in _READING_HEAD:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as error:
            cause = error.__context__
            if isinstance(cause, TollhouseError):
                self._refuse(cause)
            else:
                self.watch.log.event(logging.WARNING, "malformed_request", (), {"status": 400})
                self._refuse(BadRequest(f"malformed HTTP request: {error}"))
            return
        limit = self.watch.limits.max_header_bytes
        if self._head_bytes > limit and self._phase in _READING_HEAD:
            self._refuse(self._head_too_large(limit))

    def pause_writing(self) -> None:
        super().pause_writing()
        watch = self.watch
        watch.writing[self] = self.loop.time() + watch.limits.write_idle_timeout

    def resume_writing(self) -> None:
        super().resume_writing()
        self.watch.writing.pop(self, None)

    # --- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        watch = self.watch
        if self._phase == _IDLE:
            watch.reading[self] = self.loop.time() + watch.limits.header_timeout
        self._phase = _HEAD

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's own, plus the size count (one call per header, no super() frame).
        self._head_size += len(name) + len(value)
        name = name.lower()
        # llhttp keeps trailing whitespace, which RFC 9110 section 5.5 excludes from a value.
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        watch = self.watch
        limit = watch.limits.max_header_bytes
        if self._head_size > limit:
            raise self._head_too_large(limit)
        watch.waiting.pop(self, None)
        watch.reading[self] = self.loop.time() + watch.limits.body_timeout
        self._phase = _BODY
        self._head_bytes = self._head_size = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.watch.reading.pop(self, None)
        if self.cycle.response_complete:
            self._now_idle()
        else:
            self._phase = _ANSWERING

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may have started in its place; an answer sent before its
        # request's body was read leaves the body's deadline running.
        if self._phase == _ANSWERING and self.cycle.response_complete:
            self._now_idle()

    # --- refusals -------------------------------------------------------------------------

    def read_timed_out(self) -> None:
        """The read deadline passed: answer 408 unless there is nobody or nothing to tell."""
        watch = self.watch
        watch.reading.pop(self, None)
        if self._phase == _CLOSING:
            self.transport.abort()
            return
        if self._phase == _BODY:
            what, key, seconds = "body", "body_timeout", watch.limits.body_timeout
        else:
            what, key, seconds = "head", "header_timeout", watch.limits.header_timeout
        watch.log.event(
            logging.WARNING,
            "shedding_slow_clients",
            (key,),
            {"closed": f"request_{what}_late", "seconds": seconds, "setting": f"server.{key}"},
        )
        if self._phase == _OPENED or (self._phase == _BODY and self.cycle.response_started):
            self.transport.close()
            return
        refusal = RequestTimeout(
            f"the request {what} did not arrive within {seconds:g} s (server.{key})"
        )
        if self._phase == _BODY:
            # The app, reading the body, is told what was answered (a key of our own).
            cast(dict[str, Any], self.scope)[REFUSED] = refusal
        self._refuse(refusal)

    def write_timed_out(self) -> None:
        """The client read nothing for `write_idle_timeout`: drop it (its buffered answer
        with it), which ends the relay as a client disconnect does."""
        watch = self.watch
        watch.writing.pop(self, None)
        watch.log.event(
            logging.WARNING,
            "shedding_slow_clients",
            ("read_idle",),
            {
                "dropped": "read_nothing_of_its_answer",
                "seconds": watch.limits.write_idle_timeout,
                "setting": "timeouts.read_idle",
            },
        )
        self.transport.abort()

    def _head_too_large(self, limit: int) -> HeadersTooLarge:
        self.watch.log.event(
            logging.WARNING,
            "request_head_too_large",
            (),
            {"status": 431, "limit": limit, "setting": "server.max_header_bytes"},
        )
        return HeadersTooLarge(
            f"the request line and headers exceed {limit} bytes (server.max_header_bytes)"
        )

    def _refuse(self, error: TollhouseError) -> None:
        """Answer `error` in the client's wire format and close the connection, whose state
        is no longer to be trusted: our side at once, theirs after `_LINGER` at most."""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()  # an answer is on its way: a refusal can't follow its bytes
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in self.headers or ()
        }
        fmt = guess_format(self.url.decode("latin-1"), headers)
        request_id = new_request_id()
        body = error.body(fmt, request_id)
        lines = [
            STATUS_LINE[error.status_for(fmt)],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"%s: %s\r\n" % (FORMATS[fmt].request_id_header.encode(), request_id.encode()),
            b"x-tollhouse-request-id: %s\r\n" % request_id.encode(),
            *(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in error.headers.items()),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(lines))
        self.transport.write_eof()
        self._phase = _CLOSING
        self.flow.resume_reading()
        watch = self.watch
        watch.waiting.pop(self, None)
        watch.reading[self] = self.loop.time() + _LINGER

    def _now_idle(self) -> None:
        self._phase = _IDLE
        self.watch.waiting[self] = None


def _at_limit(limit: int) -> dict[str, object]:
    return {"limit": limit, "setting": "server.max_connections"}


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """A protocol class for uvicorn's `http=` whose connections share one watch."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"watch": ConnectionWatch(limits)})
