"""Slow request bodies (server/body_reader.py): read before a call takes a slot, bounded per
key and in total bytes, answered 408 when they stall. Raw sockets hold the bodies open; the
official SDKs make the calls that must still get through."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from tests.server.raw_http import connect, read_answer
from tests.stages.test_keys_limits_budgets import create_key
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway_with() -> Iterator[Callable[..., BackgroundServer]]:
    """Serves the test config with the given sections merged over it; stops it after."""
    servers: list[BackgroundServer] = []

    def serve(**sections: Any) -> BackgroundServer:
        servers.append(serve_gateway({**IN_PROCESS_CONFIG, **sections}))
        return servers[-1]

    yield serve
    for server in servers:
        server.stop()


def start_body(url: str, path: str, secret: str, length: int, sent: bytes = b"{") -> socket.socket:
    """A request whose head says `length` body bytes, of which only `sent` come."""
    sock = connect(url)
    auth = (
        f"x-api-key: {secret}\r\nanthropic-version: 2023-06-01\r\n"
        if path == "/v1/messages"
        else f"authorization: Bearer {secret}\r\n"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\n"
        f"content-length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def test_slow_bodies_hold_no_in_flight_slot(gateway_with: Callable[..., BackgroundServer]) -> None:
    gateway = gateway_with(reliability={**IN_PROCESS_CONFIG["reliability"], "max_in_flight": 4})
    slow = [start_body(gateway.url, "/v1/messages", GATEWAY_KEY, 1000) for _ in range(8)]
    try:
        time.sleep(0.3)
        client = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
        message = client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=HI)
        assert message.content
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize(
    ("path", "error_type"),
    [("/v1/messages", "timeout_error"), ("/v1/chat/completions", "timeout")],
)
def test_a_body_that_stalls_gets_408_in_the_clients_format(
    gateway_with: Callable[..., BackgroundServer], path: str, error_type: str
) -> None:
    gateway = gateway_with(server={"body_timeout": 0.5})
    start = time.monotonic()
    with start_body(gateway.url, path, GATEWAY_KEY, 1000) as sock:
        answer = read_answer(sock)
    assert answer.status == 408
    assert answer.json()["error"]["type"] == error_type
    assert "server.body_timeout" in answer.json()["error"]["message"]
    assert time.monotonic() - start < 5


def test_a_key_with_too_many_bodies_being_read_gets_429_and_other_keys_do_not(
    gateway_with: Callable[..., BackgroundServer], tmp_path: Path
) -> None:
    _, slow_secret = create_key(tmp_path / "keys.db")
    _, other_secret = create_key(tmp_path / "keys.db")
    gateway = gateway_with(
        keys={"required": True, "sqlite_path": str(tmp_path / "keys.db")},
        limits={"max_body_reads_per_key": 2},
    )
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": HI})
    path = "/v1/chat/completions"
    slow = [start_body(gateway.url, path, slow_secret, len(body), body[:5]) for _ in range(2)]
    try:
        time.sleep(0.3)
        with start_body(gateway.url, path, slow_secret, len(body), body[:5]) as third:
            refused = read_answer(third)
        assert refused.status == 429
        assert "max_body_reads_per_key" in refused.json()["error"]["message"]
        with start_body(gateway.url, path, other_secret, len(body), body[:5]) as other:
            time.sleep(0.1)
            other.sendall(body[5:])
            assert read_answer(other).status == 200
        slow[0].sendall(body[5:])
        assert read_answer(slow[0]).status == 200  # the key's own bodies still come in
    finally:
        for sock in slow:
            sock.close()


def test_bodies_being_read_are_bounded_in_total_bytes(
    gateway_with: Callable[..., BackgroundServer],
) -> None:
    gateway = gateway_with(limits={"max_partial_body_bytes": 1 << 20})
    with start_body(
        gateway.url, "/v1/messages", GATEWAY_KEY, 4 << 20, b"{" + b" " * (2 << 20)
    ) as sock:
        answer = read_answer(sock)
    assert answer.status == 529
    assert answer.json()["error"]["type"] == "overloaded_error"
    assert "limits.max_partial_body_bytes" in answer.json()["error"]["message"]
