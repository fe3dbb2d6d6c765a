"""The provider key is replaced in whatever an upstream sends back, whole or streamed, even
when the stream splits it across chunks, and a stream that never holds it passes unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tollhouse.providers.secret_redaction import SecretRedactor

SECRET = b"sk-ant-api03-SECRET-0123456789"
EVENT = b'event: error\ndata: {"error": {"message": "bad key ' + SECRET + b'"}}\n\n'


def redacted(chunks: list[bytes]) -> list[bytes]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def run() -> list[bytes]:
        return [c async for c in SecretRedactor(SECRET).stream(source())]

    return asyncio.run(run())


def test_a_key_split_anywhere_across_two_chunks_is_redacted() -> None:
    stream = b"event: ping\ndata: {}\n\n" + EVENT
    for cut in range(1, len(stream)):
        out = b"".join(redacted([stream[:cut], stream[cut:]]))
        assert SECRET not in out
        assert out == stream.replace(SECRET, b"[REDACTED]")


def test_a_key_split_over_many_small_chunks_is_redacted() -> None:
    out = b"".join(redacted([EVENT[i : i + 3] for i in range(0, len(EVENT), 3)]))
    assert out == EVENT.replace(SECRET, b"[REDACTED]")


def test_chunks_ending_an_event_pass_at_once_and_unchanged() -> None:
    chunks = [b"event: ping\ndata: {}\n\n", b"event: message_stop\ndata: {}\n\n"]
    assert redacted(chunks) == chunks


def test_a_whole_body_is_redacted() -> None:
    assert SecretRedactor(SECRET).whole(b"x" + SECRET + b"y" + SECRET) == (
        b"x[REDACTED]y[REDACTED]"
    )
