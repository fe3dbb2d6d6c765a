"""Relay an upstream stream to the client chunk by chunk, as it arrives.

Same format: the upstream's bytes pass through untouched. Cross format: events are parsed
and translated one by one. Once the first byte has gone out no retry can be hidden, so an
upstream failure mid-stream becomes the client format's own `error` event, never a silent end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tollhouse.call import Call
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire
from tollhouse.wire.anthropic_openai import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tollhouse.wire.sse import SSEParser


def stream_error_event(call: Call, message: str, status: int) -> bytes:
    if call.client_format == "anthropic":
        return anthropic_wire.stream_error_event(message, status)
    return openai_wire.stream_error_event(message, status)


async def relay_stream(
    call: Call,
    response: UpstreamResponse,
    upstream_format: str,
    chunks: AsyncIterator[bytes],
    first_chunk: bytes,
) -> AsyncIterator[bytes]:
    """The client's stream: `first_chunk` (read before the reply was committed, so that a
    failure up to then could still be retried), then the rest of `chunks`."""
    try:
        if upstream_format == call.client_format:
            if first_chunk:
                yield first_chunk
            async for chunk in chunks:
                yield chunk
        else:
            async for chunk in _translated(call, _prepend(first_chunk, chunks)):
                yield chunk
    except UpstreamTimeoutError:
        yield stream_error_event(call, "upstream stream went silent; the answer is incomplete", 504)
    except UpstreamConnectionError:
        yield stream_error_event(
            call, "upstream connection broke mid-stream; the answer is incomplete", 502
        )
    finally:
        await response.aclose()


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _translated(call: Call, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    translator: AnthropicToOpenAIStream | OpenAIToAnthropicStream
    if call.client_format == "openai":
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        translator = AnthropicToOpenAIStream(call.model, include_usage)
    else:
        translator = OpenAIToAnthropicStream(call.model, request_input_tokens(call.body))
    parser = SSEParser()
    async for chunk in chunks:
        out: list[bytes] = []
        for event in parser.feed(chunk):
            out.extend(translator.feed(event))
        if out:
            yield b"".join(out)
    tail: list[bytes] = []
    for event in parser.flush():
        tail.extend(translator.feed(event))
    tail.extend(translator.finish())
    if tail:
        yield b"".join(tail)
