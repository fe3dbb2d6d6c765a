"""A very long streamed answer is made event by event as it is sent: its first bytes leave
at once and the simulator never holds the whole stream, in process and over HTTP."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.simulator.conftest import ServeSimulator

from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator

LONG = {"reply_tokens": 400_000}
HI = [{"role": "user", "content": "hi"}]
REQUESTS: dict[str, dict[str, Any]] = {
    "/v1/messages": {"model": "m", "max_tokens": 400_000, "stream": True, "messages": HI},
    "/v1/chat/completions": {
        "model": "m",
        "max_tokens": 400_000,
        "stream": True,
        "messages": HI,
        "stream_options": {"include_usage": True},
    },
}


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("path", list(REQUESTS))
def test_a_long_stream_is_sent_with_memory_far_below_its_size(path: str, traced: None) -> None:
    async def main() -> tuple[int, int, int]:
        simulator = Simulator(SimulatorConfig.from_mapping(LONG))
        base = tracemalloc.get_traced_memory()[0]
        response = await simulator.handle("POST", path, {}, orjson.dumps(REQUESTS[path]))
        size = 0
        at_first_chunk = -1
        async for chunk in response.iter_chunks():
            if at_first_chunk < 0:
                at_first_chunk = tracemalloc.get_traced_memory()[0] - base
            size += len(chunk)
        return size, at_first_chunk, tracemalloc.get_traced_memory()[1] - base

    size, at_first_chunk, peak = asyncio.run(main())
    assert size > 10_000_000
    assert at_first_chunk < size / 4
    assert peak < size / 2


@pytest.mark.parametrize("path", list(REQUESTS))
def test_a_long_paced_stream_sends_its_first_event_long_before_its_end(
    path: str, serve_simulator: ServeSimulator, traced: None
) -> None:
    # 400k tokens at 4000 tokens/s: the whole answer would take 100 s.
    server = serve_simulator(**LONG, tokens_per_second=4000)
    base = tracemalloc.get_traced_memory()[0]
    with (
        httpx.Client(base_url=server.url, timeout=60) as client,
        client.stream("POST", path, json=REQUESTS[path]) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_lines())
        grown = tracemalloc.get_traced_memory()[0] - base
    assert first in ("event: message_start", "") or first.startswith("data: {")
    assert grown < 8_000_000  # the whole stream is 13-27 MB
