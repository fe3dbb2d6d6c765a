"""Relay an upstream stream to the client chunk by chunk, as it arrives, and account for it.

Same format: the upstream's bytes pass through untouched (except a usage chunk the gateway
asked for on the client's behalf, which is kept from it). Cross format: events are parsed and
translated one by one. Either way every upstream event is shown to a usage observer, so the
call's usage, cost and stop reason are known when the stream ends, and estimated, marked so,
when it breaks. Once the first byte has gone out no retry can be hidden, so an upstream
failure mid-stream becomes the client format's own `error` event, never a silent end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tollhouse.accounting import AnthropicStreamUsage, OpenAIStreamUsage, Usage
from tollhouse.call import Call
from tollhouse.errors import TollhouseError
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from tollhouse.stages.answer_facts import TRUNCATED, anthropic_stop_reason
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire
from tollhouse.wire.anthropic_openai import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tollhouse.wire.sse import SSEEvent, SSEParser, frame_event

Observer = AnthropicStreamUsage | OpenAIStreamUsage


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
    observer: Observer = (
        AnthropicStreamUsage() if upstream_format == "anthropic" else OpenAIStreamUsage()
    )
    source = _prepend(first_chunk, chunks)
    try:
        if upstream_format != call.client_format:
            relayed = _translated(call, source, observer)
        elif call.hide_usage_chunk:
            relayed = _without_usage_chunk(source, observer)
        else:
            relayed = _observed(source, observer)
        async for chunk in relayed:
            yield chunk
    except UpstreamTimeoutError:
        yield stream_error_event(call, "upstream stream went silent; the answer is incomplete", 504)
    except UpstreamConnectionError:
        yield stream_error_event(
            call, "upstream connection broke mid-stream; the answer is incomplete", 502
        )
    except TollhouseError as exc:
        yield stream_error_event(call, f"{exc.message}; the answer is incomplete", exc.status)
    finally:
        _account(call, observer)
        await response.aclose()


def _account(call: Call, observer: Observer) -> None:
    usage = observer.usage
    if usage.prompt_tokens == 0:
        # The stream broke before the upstream said how long the prompt was.
        usage = Usage(
            input_tokens=request_input_tokens(call.body),
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            estimated=True,
        )
    call.usage = usage
    reason = observer.stop_reason
    if isinstance(observer, OpenAIStreamUsage):
        reason = anthropic_stop_reason(reason)
    call.stop_reason = reason
    call.truncated = reason in TRUNCATED


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _observed(chunks: AsyncIterator[bytes], observer: Observer) -> AsyncIterator[bytes]:
    parser = SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            observer.feed(event)
        yield chunk


async def _without_usage_chunk(
    chunks: AsyncIterator[bytes], observer: Observer
) -> AsyncIterator[bytes]:
    parser = SSEParser()
    async for chunk in chunks:
        out: list[bytes] = []
        for event in parser.feed(chunk):
            observer.feed(event)
            if not _is_usage_chunk(event):
                out.append(frame_event(event.event, event.data))
        if out:
            yield b"".join(out)


def _is_usage_chunk(event: SSEEvent) -> bool:
    # The usage chunk is the one with no choices: `{"choices": [], "usage": {...}}`.
    return '"choices":[]' in event.data.replace(" ", "") and '"usage"' in event.data


async def _translated(
    call: Call, chunks: AsyncIterator[bytes], observer: Observer
) -> AsyncIterator[bytes]:
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
            observer.feed(event)
            out.extend(translator.feed(event))
        if out:
            yield b"".join(out)
    tail: list[bytes] = []
    for event in parser.flush():
        observer.feed(event)
        tail.extend(translator.feed(event))
    tail.extend(translator.finish())
    if tail:
        yield b"".join(tail)
