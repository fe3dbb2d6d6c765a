"""Back-pressure from the consumer of an upstream body to the upstream's socket: a stream
nobody pulls stops being read (memory per stream stays bounded while the upstream is held by
TCP flow control), and loses nothing once pulled again; a body read whole is never held. End
to end, a gateway client that reads nothing holds the upstream back the same way."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trustme
import uvloop
from tests.providers.loopback_network import provider_config, server_context, serving_on_thread
from tests.support import serve_gateway

from tollhouse.providers.base import UpstreamRequest
from tollhouse.providers.http1_connection import Http1Response
from tollhouse.providers.http_transport import HttpTransport

STREAM_BYTES = 48 << 20
PIECE = b"data: " + b"x" * 16_378 + b"\n\n"  # 16 KiB SSE events
BOUND = 1 << 20  # what a stream may hold in gateway memory while its consumer does not pull

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(main())


class FastUpstream:
    """Writes a `STREAM_BYTES` chunked stream as fast as the socket takes it; `sent` counts
    what the kernel has accepted so far."""

    def __init__(self) -> None:
        self.sent = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        chunk = f"{len(PIECE):x}\r\n".encode() + PIECE + b"\r\n"
        try:
            for _ in range(STREAM_BYTES // len(PIECE)):
                writer.write(chunk)
                await writer.drain()
                self.sent += len(PIECE)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_stream_nobody_pulls_is_held_at_the_socket_then_relayed_whole(
    loop: str, secure: bool, ca: trustme.CA, ca_file: str
) -> None:
    upstream = FastUpstream()

    async def main() -> None:
        context = server_context(ca, "localhost") if secure else None
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        scheme = "https" if secure else "http"
        client = HttpTransport(
            f"{scheme}://localhost:{port}", {}, ca_bundle=ca_file, read_idle_timeout=10
        )
        request = UpstreamRequest(path="/stream", body=b"{}", stream=True, timeout=10)
        try:
            response = await client.send(request)
            assert isinstance(response, Http1Response)
            chunks = response.iter_chunks()
            received = len(await anext(chunks))
            peak = 0
            for _ in range(20):  # the consumer stalls for a second
                await asyncio.sleep(0.05)
                peak = max(peak, response.buffered)
            held_back = STREAM_BYTES - upstream.sent
            async for chunk in chunks:
                received += len(chunk)
        finally:
            await client.aclose()
            server.close()
        assert peak <= BOUND, f"{peak} bytes buffered for a stalled consumer"
        # TCP flow control held the upstream back: most of the stream was still unsent.
        assert held_back > STREAM_BYTES // 2
        assert received == STREAM_BYTES // len(PIECE) * len(PIECE)

    run(loop, main)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_whole_body_larger_than_the_stream_bound_is_read(loop: str) -> None:
    body = b"x" * (4 << 20)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpTransport(f"http://127.0.0.1:{port}", {}, read_idle_timeout=2)
        request = UpstreamRequest(path="/whole", body=b"{}", stream=False, timeout=5)
        try:
            response = await client.send(request)
            await asyncio.sleep(0.2)  # the answer arrives before anyone reads it
            assert await response.read() == body
        finally:
            await client.aclose()
            server.close()

    run(loop, main)


class FastAnthropicStream:
    """An Anthropic upstream whose answer is a 64 MiB stream of 16 KB text deltas, written as
    fast as the socket takes them; `sent` counts what the kernel has accepted."""

    TOTAL = 64 << 20
    START = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
        b'"type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,'
        b'"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
    )
    DELTA = (
        b"event: content_block_delta\ndata: "
        + json.dumps(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "x" * 16_000},
            }
        ).encode()
        + b"\n\n"
    )

    def __init__(self) -> None:
        self.sent = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        parts = [self.START] + [self.DELTA] * (self.TOTAL // len(self.DELTA))
        try:
            for part in parts:
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await writer.drain()
                self.sent += len(part)
        except ConnectionError:
            pass
        finally:
            writer.close()


def test_gateway_stops_reading_the_upstream_for_a_client_that_reads_nothing() -> None:
    upstream = FastAnthropicStream()
    body = json.dumps(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
    ).encode()
    with serving_on_thread(upstream.handle) as port:
        server = serve_gateway(provider_config(f"http://127.0.0.1:{port}"))
        client = socket.create_connection(("127.0.0.1", server.port))
        try:
            client.sendall(
                b"POST /v1/messages HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
                b"anthropic-version: 2023-06-01\r\ncontent-length: %d\r\n\r\n" % len(body) + body
            )
            deadline = time.monotonic() + 10
            while upstream.sent == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2)  # the client reads nothing
            held = upstream.sent
        finally:
            client.close()
            server.stop()
    # What left the upstream sits in socket buffers (kernel, both hops) and one bounded read
    # buffer per connection: most of the answer was never pulled from the upstream.
    assert 0 < held < upstream.TOTAL // 2, f"{held >> 20} MiB of {upstream.TOTAL >> 20} sent"
