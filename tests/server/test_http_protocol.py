"""The HTTP edge against clients that are slow or hostile on purpose (server/http_protocol.py):
raw sockets against a real gateway on loopback, since no SDK sends a request this badly."""

from __future__ import annotations

import logging
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest
from tests.server.raw_http import closed_within, connect, read_answer
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def edge_gateway() -> Iterator[Callable[..., BackgroundServer]]:
    """Serves a gateway whose `server` section is the keyword arguments; stops it after."""
    servers: list[BackgroundServer] = []

    def serve(**server: Any) -> BackgroundServer:
        servers.append(serve_gateway({**IN_PROCESS_CONFIG, "server": server}))
        return servers[-1]

    yield serve
    for server in servers:
        server.stop()


def send_slowly(sock: socket.socket, data: bytes, pause: float) -> None:
    """Send `data` a byte at a time, stopping when the gateway closes its side."""
    for byte in data:
        try:
            sock.send(bytes([byte]))
        except OSError:
            return
        time.sleep(pause)


def test_a_head_sent_a_byte_at_a_time_gets_408_in_json(
    edge_gateway: Callable[..., BackgroundServer],
) -> None:
    gateway = edge_gateway(header_timeout=0.5)
    with connect(gateway.url) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")
        send_slowly(sock, b"x-slow: " + b"a" * 40, 0.05)
        answer = read_answer(sock)
        elapsed = time.monotonic() - start
    assert answer.status == 408
    assert answer.json()["error"]["type"] == "timeout_error"  # the Anthropic shape (its path)
    assert "server.header_timeout" in answer.json()["error"]["message"]
    assert elapsed < 5


def test_a_connection_that_sends_nothing_is_closed(
    edge_gateway: Callable[..., BackgroundServer],
) -> None:
    gateway = edge_gateway(header_timeout=0.5)
    with connect(gateway.url) as sock:
        assert closed_within(sock, 5) is not None


def test_an_idle_kept_alive_connection_outlives_the_header_timeout(
    edge_gateway: Callable[..., BackgroundServer],
) -> None:
    gateway = edge_gateway(header_timeout=0.5)
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(1.5)
        second = client.get("/healthz")
        assert second.status_code == 200
        assert client.get("/healthz").extensions["http_version"] == b"HTTP/1.1"


def test_a_head_over_64_kb_gets_431_in_the_clients_format(gateway_url: str) -> None:
    response = httpx.post(
        gateway_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {GATEWAY_KEY}", "x-pad": "a" * 100_000},
        json={"model": "gpt-4o-mini", "messages": HI},
    )
    assert response.status_code == 431
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "server.max_header_bytes" in error["message"]


def test_a_never_ending_header_is_refused_before_it_is_buffered(gateway_url: str) -> None:
    with connect(gateway_url) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-pad: ")
        sent = 0
        # A selector, not select.select: late in a full run this socket's descriptor can be
        # above FD_SETSIZE (1024), where select() refuses it.
        with selectors.DefaultSelector() as readable:
            readable.register(sock, selectors.EVENT_READ)
            while sent < 8 << 20 and not readable.select(0.01):
                sock.sendall(b"a" * 65536)
                sent += 65536
        answer = read_answer(sock)
    assert answer.status == 431
    assert answer.json()["type"] == "error"
    assert sent < 1 << 20  # answered while the header was still coming


def test_a_head_under_the_limit_is_served(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=16,
        messages=HI,
        extra_headers={"x-pad": "a" * 60_000},
    )
    assert message.content


@pytest.mark.parametrize(
    ("request_bytes", "shape"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "openai"),
        (b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n", "anthropic"),
        (
            b"GET /v1/models HTTP/1.1\r\nanthropic-version: 1\r\nhost: x\r\nbad\x01name: x\r\n\r\n",
            "anthropic",
        ),
    ],
)
def test_a_malformed_request_gets_400_in_json(
    gateway_url: str, request_bytes: bytes, shape: str
) -> None:
    with connect(gateway_url) as sock:
        sock.sendall(request_bytes)
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert "malformed HTTP request" in body["error"]["message"]
    if shape == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
    else:
        assert set(body["error"]) >= {"message", "type", "param", "code"}


def test_at_the_connection_limit_the_longest_waiting_connection_makes_room(
    edge_gateway: Callable[..., BackgroundServer], caplog: pytest.LogCaptureFixture
) -> None:
    gateway = edge_gateway(max_connections=4)
    caplog.set_level(logging.WARNING, logger="tollhouse.server")
    silent = [connect(gateway.url) for _ in range(4)]
    try:
        time.sleep(0.2)
        response = httpx.get(gateway.url + "/healthz")
        assert response.status_code == 200
        assert closed_within(silent[0], 5) is not None
        assert closed_within(silent[3], 0.3) is None
    finally:
        for sock in silent:
            sock.close()
    assert any("server.max_connections" in r.getMessage() for r in caplog.records)


def test_at_the_connection_limit_with_none_waiting_a_new_connection_gets_503(
    edge_gateway: Callable[..., BackgroundServer], caplog: pytest.LogCaptureFixture
) -> None:
    gateway = edge_gateway(max_connections=2)
    caplog.set_level(logging.WARNING, logger="tollhouse.server")
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 100\r\n\r\n{"
    )
    busy = [connect(gateway.url) for _ in range(2)]
    try:
        for sock in busy:
            sock.sendall(head)
        time.sleep(0.2)
        with connect(gateway.url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = read_answer(sock)
    finally:
        for sock in busy:
            sock.close()
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1"
    assert "server.max_connections" not in answer.json()["error"]["message"]
    assert any("refused" in r.getMessage() for r in caplog.records)
