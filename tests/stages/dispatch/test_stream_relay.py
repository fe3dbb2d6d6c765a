"""The same-format stream relay passes bytes through untouched, whatever the chunking,
while reading the usage and stop reason from the few events that carry them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import pytest

from tollhouse.call import Call
from tollhouse.stages.dispatch.stream_relay import relay_stream
from tollhouse.wire.anthropic import message_stream
from tollhouse.wire.formats import ANTHROPIC

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "Hello there, " * 20}],
    "stop_reason": "max_tokens",
    "stop_sequence": None,
    "usage": {"input_tokens": 42, "output_tokens": 77},
}
STREAM = b"".join(message_stream(MESSAGE))


class FakeResponse:
    status = 200
    headers: Mapping[str, str] = {}

    async def read(self) -> bytes:
        return b""

    def iter_chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def stream_call() -> Call:
    return Call(
        client_format="anthropic",
        endpoint="messages",
        body={"model": "m", "max_tokens": 100, "stream": True, "messages": []},
        raw_body=b"",
        headers={},
    )


def relay(data: bytes, size: int, cut: int | None = None) -> tuple[bytes, Call]:
    call = stream_call()
    data = data if cut is None else data[:cut]

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    async def run() -> bytes:
        out = [c async for c in relay_stream(call, FakeResponse(), ANTHROPIC, chunks(), b"")]
        return b"".join(out)

    return asyncio.run(run()), call


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_bytes_pass_through_and_usage_is_read_whatever_the_chunking(size: int) -> None:
    relayed, call = relay(STREAM, size)
    assert relayed == STREAM
    assert call.usage is not None
    assert (call.usage.input_tokens, call.usage.output_tokens) == (42, 77)
    assert not call.usage.estimated
    assert call.stop_reason == "max_tokens"
    assert call.truncated


def test_crlf_framed_streams_are_read_too() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    relayed, call = relay(crlf, 50)
    assert relayed == crlf
    assert call.usage is not None
    assert call.usage.output_tokens == 77


def test_a_cut_stream_is_estimated_from_its_content() -> None:
    end_of_content = STREAM.index(b"event: content_block_stop")
    _, call = relay(STREAM, 64, cut=end_of_content)
    assert call.usage is not None
    assert call.usage.estimated
    assert call.usage.input_tokens == 42
    assert call.usage.output_tokens > 1
    assert call.stop_reason is None


def test_a_crlf_stream_is_committed_at_its_first_content_not_held_whole() -> None:
    from tollhouse.stages.dispatch.attempt import _hold_preamble

    crlf = STREAM.replace(b"\n", b"\r\n")
    pieces = crlf.split(b"\r\n\r\n")

    async def chunks() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece + b"\r\n\r\n"

    async def run() -> bytes | str:
        return await _hold_preamble(chunks(), ANTHROPIC)

    held = asyncio.run(run())
    assert isinstance(held, bytes)
    # message_start, content_block_start, then the first content delta: committed there.
    assert held.count(b"event: ") == 3
    assert held.endswith(b"\r\n\r\n")
    assert b"content_block_delta" in held
    assert b"message_stop" not in held


def test_a_long_stream_without_usage_is_estimated_in_bounded_memory() -> None:
    import tracemalloc

    from tollhouse.tokens.estimate import text_tokens

    head = STREAM[: STREAM.index(b"event: content_block_delta")]
    piece = "word " * 40
    delta = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"' + piece.encode() + b'"}}\n\n'
    )
    deltas = 40_000  # about 10 MB of events, cut before the usage arrives
    call = stream_call()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for _ in range(deltas):
            yield delta

    async def run() -> int:
        relayed = 0
        async for chunk in relay_stream(call, FakeResponse(), ANTHROPIC, chunks(), b""):
            relayed += len(chunk)
        return relayed

    tracemalloc.start()
    try:
        relayed = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert relayed == len(head) + deltas * len(delta)
    assert peak < relayed / 4  # the stream is not held whole
    assert call.usage is not None
    assert call.usage.estimated
    first_text = str(MESSAGE["content"][0]["text"])  # type: ignore[index]
    assert call.usage.output_tokens >= text_tokens(piece * deltas)
    assert call.usage.output_tokens <= text_tokens(first_text + piece * deltas)
