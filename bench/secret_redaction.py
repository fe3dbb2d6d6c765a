"""What keeping the provider key out of a relayed stream costs per chunk, in process.

Runs a stream of typical content-delta chunks through `SecretRedactor.stream` and through a
bare pass-through async generator (the baseline: the one layer the redactor adds), and prints
the medians of repeats and the added cost per chunk.

    .venv/bin/python bench/secret_redaction.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from tollhouse.providers.secret_redaction import SecretRedactor

CHUNK = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hello world "}}\n\n'
)
CHUNKS = 20_000
REPEATS = 15
SECRET = b"sk-ant-api03-" + b"x" * 80


async def source() -> AsyncIterator[bytes]:
    for _ in range(CHUNKS):
        yield CHUNK


async def passthrough(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk


async def baseline() -> None:
    async for _ in passthrough(source()):
        pass


async def redacted() -> None:
    async for _ in SecretRedactor(SECRET).stream(source()):
        pass


def median_ns_per_chunk(run: Callable[[], Coroutine[Any, Any, None]]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        asyncio.run(run())
        times.append(time.perf_counter() - started)
    return statistics.median(times) / CHUNKS * 1e9


def main() -> None:
    base = median_ns_per_chunk(baseline)
    red = median_ns_per_chunk(redacted)
    print(f"pass-through layer: {base:.0f} ns/chunk")
    print(f"redacting layer:    {red:.0f} ns/chunk ({red / base:.2f}x, +{red - base:.0f} ns)")


if __name__ == "__main__":
    main()
