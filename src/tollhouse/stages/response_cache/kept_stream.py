"""A streamed answer kept for the cache as it is relayed: every chunk goes on to the client
as it comes, and is then fed to the client format's assembly (wire/stream_assembly.py),
which holds the whole answer the stream makes (about the size of its content, not of its
events). Once the stream has ended complete, the answer is handed to `store`; an answer
that grows past `max_bytes` is given up at once (`store(None)`: not stored), one that
broke off, failed or was left by the client is never stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

from tollhouse.call import Call
from tollhouse.wire.sse import SSEParser
from tollhouse.wire.stream_assembly import StreamAssembly


async def kept_stream(
    call: Call,
    stream: AsyncIterator[bytes],
    max_bytes: int,
    store: Callable[[bytes | None], Awaitable[None]],
) -> AsyncIterator[bytes]:
    assembly: StreamAssembly | None = call.wire.stream_assembly()
    parser = SSEParser()
    try:
        async for chunk in stream:
            yield chunk
            # Here the chunk has gone on: the client never waits for the assembly.
            if assembly is not None:
                for event in parser.feed(chunk):
                    assembly.feed(event)
                if assembly.size > max_bytes:
                    assembly = None
                    await store(None)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if assembly is None:
        return
    for event in parser.flush():
        assembly.feed(event)
    # The relay has ended, so accounting has noted the stream's usage and stop reason.
    answer = assembly.answer_using(call.usage)
    if answer is not None:
        await store(orjson.dumps(answer))
