"""The end of a stream is held until its answer is checked, wherever the chunks split it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from tollhouse.call import Call
from tollhouse.config.model import StructuredOutputPolicy
from tollhouse.stages.check.json_schemas import SchemaCache, compile_schema
from tollhouse.stages.check.structured_output import OutputRequirement
from tollhouse.stages.check.structured_stream import validate_stream_at_end

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def chat_stream(text: str) -> bytes:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": text[:3]}}]},
        {"choices": [{"index": 0, "delta": {"content": text[3:]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def relayed(stream: bytes, cut_every: int) -> list[bytes]:
    call = Call("openai", "chat_completions", {"model": "m", "stream": True}, b"", {})
    requirement = OutputRequirement(
        StructuredOutputPolicy(schema="s"), compile_schema(SCHEMA), "s", SCHEMA, SchemaCache()
    )

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(stream), cut_every):
            yield stream[at : at + cut_every]

    async def run() -> list[bytes]:
        return [c async for c in validate_stream_at_end(call, chunks(), requirement)]

    return asyncio.run(run())


@pytest.mark.parametrize("cut_every", [1, 5, 7, 13, 64, 10_000])
def test_a_valid_stream_arrives_whole_whatever_its_chunks(cut_every: int) -> None:
    stream = chat_stream('{"n": 12}')
    assert b"".join(relayed(stream, cut_every)) == stream


@pytest.mark.parametrize("cut_every", [1, 5, 7, 13, 64, 10_000])
def test_an_invalid_stream_ends_with_the_error_event_instead_of_done(cut_every: int) -> None:
    stream = chat_stream('{"n": "twelve"}')
    out = b"".join(relayed(stream, cut_every))
    assert b"[DONE]" not in out
    assert out.startswith(stream[: stream.index(b"data: [DONE]")])
    assert b'at /n: \\"twelve\\" is not of type' in out
    assert out.endswith(b"\n\n")
    assert out.count(b'"error"') == 1


def test_content_is_relayed_before_the_end_is_known() -> None:
    stream = chat_stream('{"n": 12}')
    pieces = relayed(stream, 64)
    assert len(pieces) > 2  # not held back whole
