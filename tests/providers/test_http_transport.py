"""The upstream HTTP/1.1 client against raw socket servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)
from tollhouse.providers.http_transport import HttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REQUEST = UpstreamRequest(path="/v1/messages", body=b'{"a": 1}', stream=False, timeout=2.0)
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def run_with_server(handler: Handler, scenario: Callable[[HttpTransport], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = HttpTransport(
            f"http://127.0.0.1:{port}", {"x-api-key": "server-key"}, read_idle_timeout=0.5
        )
        try:
            await scenario(transport)
        finally:
            await transport.aclose()
            server.close()

    asyncio.run(main())


def test_keep_alive_connection_is_reused_across_calls() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK)
            await writer.drain()

    async def scenario(transport: HttpTransport) -> None:
        for _ in range(5):
            response = await transport.send(REQUEST)
            assert await response.read() == b"{}"

    run_with_server(handler, scenario)
    assert connections == 1


def test_request_carries_credentials_length_and_body() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async def scenario(transport: HttpTransport) -> None:
        request = UpstreamRequest(
            path="/v1/messages",
            body=b'{"a": 1}',
            stream=True,
            headers={"anthropic-beta": "x", "x-api-key": "client-key-must-not-pass"},
        )
        await (await transport.send(request)).read()

    run_with_server(handler, scenario)
    head, body = seen[0]
    assert head.startswith(b"POST /v1/messages HTTP/1.1\r\n")
    assert b"x-api-key: server-key\r\n" in head
    assert b"client-key-must-not-pass" not in head
    assert b"anthropic-beta: x\r\n" in head
    assert b"accept: text/event-stream\r\n" in head
    assert body == b'{"a": 1}'


def test_stale_keep_alive_connection_is_retried_once_on_a_fresh_one() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(OK)  # keep-alive is advertised, but the server then closes
        await writer.drain()
        writer.close()

    async def scenario(transport: HttpTransport) -> None:
        assert await (await transport.send(REQUEST)).read() == b"{}"
        await asyncio.sleep(0.05)
        assert await (await transport.send(REQUEST)).read() == b"{}"

    run_with_server(handler, scenario)
    assert served == 2


def test_chunked_body_is_relayed_chunk_by_chunk() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b"event: a\n\n", b"event: b\n\n"):
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def scenario(transport: HttpTransport) -> None:
        response = await transport.send(REQUEST)
        chunks = [chunk async for chunk in response.iter_chunks()]
        assert chunks == [b"event: a\n\n", b"event: b\n\n"]

    run_with_server(handler, scenario)


def test_body_delimited_by_connection_close_is_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    async def scenario(transport: HttpTransport) -> None:
        assert await (await transport.send(REQUEST)).read() == b"until the end"

    run_with_server(handler, scenario)


def test_connection_dropped_mid_body_raises_connection_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    async def scenario(transport: HttpTransport) -> None:
        response = await transport.send(REQUEST)
        with pytest.raises(UpstreamConnectionError):
            await response.read()

    run_with_server(handler, scenario)


def test_silent_upstream_mid_stream_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async def scenario(transport: HttpTransport) -> None:
        response = await transport.send(REQUEST)
        got = []
        with pytest.raises(UpstreamTimeoutError):  # noqa: PT012 - the failure comes mid-iteration
            async for chunk in response.iter_chunks():
                got.append(chunk)
        assert got == [b"abc"]

    run_with_server(handler, scenario)


def test_no_status_line_within_the_first_byte_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def scenario(transport: HttpTransport) -> None:
        request = UpstreamRequest(path="/x", body=b"{}", stream=False, timeout=0.2)
        with pytest.raises(UpstreamTimeoutError):
            await transport.send(request)

    run_with_server(handler, scenario)


def test_malformed_http_is_a_connection_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SPDY/9 what is this\r\n\r\n")
        await writer.drain()

    async def scenario(transport: HttpTransport) -> None:
        with pytest.raises(UpstreamConnectionError, match="malformed"):
            await transport.send(REQUEST)

    run_with_server(handler, scenario)


def test_refused_connection_names_the_address() -> None:
    async def scenario() -> None:
        transport = HttpTransport("http://127.0.0.1:9", {}, connect_timeout=1)
        with pytest.raises(UpstreamConnectionError, match=r"127\.0\.0\.1:9"):
            await transport.send(REQUEST)

    asyncio.run(scenario())


def test_connections_are_bounded_and_callers_queue() -> None:
    peak = 0
    active = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        try:
            while True:
                try:
                    await read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                await asyncio.sleep(0.01)
                writer.write(OK)
                await writer.drain()
        finally:
            active -= 1

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = HttpTransport(f"http://127.0.0.1:{port}", {}, max_connections=3)

        async def one() -> bytes:
            return await (await transport.send(REQUEST)).read()

        results = await asyncio.gather(*(one() for _ in range(20)))
        await transport.aclose()
        server.close()
        assert results == [b"{}"] * 20
        # the 17 callers that found all three busy waited, and the pool says so
        assert transport.pool.waits == 17
        assert transport.pool.wait_seconds > 0.0

    asyncio.run(main())
    assert peak <= 3


def test_without_a_cap_no_caller_waits_for_a_connection() -> None:
    active = 0
    peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        try:
            await read_request(reader)
            await asyncio.sleep(0.2)  # all 20 calls are in flight at once
            writer.write(OK)
            await writer.drain()
            await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        finally:
            active -= 1

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = HttpTransport(f"http://127.0.0.1:{port}", {})

        async def one() -> bytes:
            return await (await transport.send(REQUEST)).read()

        results = await asyncio.gather(*(one() for _ in range(20)))
        await transport.aclose()
        server.close()
        assert results == [b"{}"] * 20
        assert (transport.pool.waits, transport.pool.max_connections) == (0, None)

    asyncio.run(main())
    assert peak == 20


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        HttpTransport("ftp://example.com", {})
