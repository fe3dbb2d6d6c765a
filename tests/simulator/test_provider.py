"""The simulator as an in-process provider: the `Provider` interface with no socket, failing
the way an HTTP provider fails."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)
from tollhouse.providers.simulator import SimulatorProvider
from tollhouse.simulator.engine import Simulator
from tollhouse.wire.sse import SSEParser

MESSAGES = orjson.dumps(
    {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
)
STREAMED = orjson.dumps(
    {
        "model": "m",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
)
CHAT = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def anthropic_provider() -> SimulatorProvider:
    return SimulatorProvider("sim", "anthropic", Simulator())


async def read_all(request: UpstreamRequest, provider: SimulatorProvider) -> tuple[int, bytes]:
    response = await provider.send(request)
    try:
        return response.status, b"".join([c async for c in response.iter_chunks()])
    finally:
        await response.aclose()


def test_send_then_read_returns_a_message() -> None:
    async def run() -> Any:
        response = await anthropic_provider().send(UpstreamRequest("/v1/messages", MESSAGES, False))
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["request-id"].startswith("req_")
        return orjson.loads(await response.read())

    assert asyncio.run(run())["type"] == "message"


def test_openai_paths_are_relative_to_v1() -> None:
    provider = SimulatorProvider("sim", "openai", Simulator())
    status, body = asyncio.run(
        read_all(UpstreamRequest("/chat/completions", CHAT, False), provider)
    )
    assert status == 200
    assert orjson.loads(body)["object"] == "chat.completion"
    status, body = asyncio.run(
        read_all(UpstreamRequest("/models", b"", False, method="GET"), provider)
    )
    assert orjson.loads(body)["object"] == "list"


def test_iter_chunks_yields_a_complete_event_stream() -> None:
    status, body = asyncio.run(
        read_all(UpstreamRequest("/v1/messages", STREAMED, True), anthropic_provider())
    )
    events = SSEParser().feed(body)
    assert status == 200
    assert events[0].event == "message_start"
    assert events[-1].event == "message_stop"


def test_streams_are_paced_by_ttft_and_tokens_per_second() -> None:
    from tollhouse.simulator.config import SimulatorConfig

    provider = SimulatorProvider(
        "sim", "anthropic", Simulator(SimulatorConfig(ttft_ms=100, tokens_per_second=1000))
    )

    async def run() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        response = await provider.send(UpstreamRequest("/v1/messages", STREAMED, True))
        started = loop.time()
        chunks = [c async for c in response.iter_chunks()]
        return loop.time() - started, len(chunks)

    elapsed, chunks = asyncio.run(run())
    assert elapsed >= 0.1
    assert chunks > 3


def test_reset_raises_connection_error_from_send() -> None:
    request = UpstreamRequest(
        "/v1/messages", MESSAGES, False, headers={"x-simulator-fault": "reset"}
    )
    with pytest.raises(UpstreamConnectionError):
        asyncio.run(anthropic_provider().send(request))


def test_mid_stream_reset_raises_connection_error_from_iter_chunks() -> None:
    request = UpstreamRequest(
        "/v1/messages", STREAMED, True, headers={"x-simulator-fault": "mid-stream-reset:2"}
    )
    received: list[bytes] = []

    async def run() -> None:
        response = await anthropic_provider().send(request)
        async for chunk in response.iter_chunks():
            received.append(chunk)

    with pytest.raises(UpstreamConnectionError):
        asyncio.run(run())
    assert [e.event for e in SSEParser().feed(b"".join(received))] == [
        "message_start",
        "content_block_start",
    ]


def test_mid_stream_reset_of_a_plain_call_raises_from_read() -> None:
    request = UpstreamRequest(
        "/v1/messages", MESSAGES, False, headers={"x-simulator-fault": "mid-stream-reset"}
    )

    async def run() -> None:
        response = await anthropic_provider().send(request)
        assert response.status == 200
        await response.read()

    with pytest.raises(UpstreamConnectionError):
        asyncio.run(run())


def test_hang_becomes_a_timeout_after_the_request_timeout() -> None:
    request = UpstreamRequest(
        "/v1/messages", MESSAGES, False, headers={"x-simulator-fault": "hang"}, timeout=0.05
    )
    with pytest.raises(UpstreamTimeoutError):
        asyncio.run(anthropic_provider().send(request))


def test_error_faults_are_responses_not_exceptions() -> None:
    request = UpstreamRequest("/v1/messages", MESSAGES, False, headers={"x-simulator-fault": "529"})
    status, body = asyncio.run(read_all(request, anthropic_provider()))
    assert status == 529
    assert orjson.loads(body)["error"]["type"] == "overloaded_error"
