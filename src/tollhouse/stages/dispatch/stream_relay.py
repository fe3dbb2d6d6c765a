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
from dataclasses import replace

from tollhouse.accounting import (
    AnthropicStreamUsage,
    OpenAIStreamUsage,
    usage_from_anthropic,
)
from tollhouse.call import Call
from tollhouse.errors import TollhouseError
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from tollhouse.stages.account import note_stream
from tollhouse.stages.dispatch.stream_markers import (
    accounting_events,
    complete_events,
    holds_accounting,
)
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.types import WireFormat
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire
from tollhouse.wire.anthropic_openai import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tollhouse.wire.sse import SSEEvent, SSEParser, frame_event

Observer = AnthropicStreamUsage | OpenAIStreamUsage
Translator = AnthropicToOpenAIStream | OpenAIToAnthropicStream


def stream_error_event(call: Call, message: str, status: int) -> bytes:
    if call.client_format == "anthropic":
        return anthropic_wire.stream_error_event(message, status)
    return openai_wire.stream_error_event(message, status)


async def relay_stream(
    call: Call,
    response: UpstreamResponse,
    upstream_format: WireFormat,
    chunks: AsyncIterator[bytes],
    first_chunk: bytes,
) -> AsyncIterator[bytes]:
    """The client's stream: `first_chunk` (read before the reply was committed, so that a
    failure up to then could still be retried), then the rest of `chunks`."""
    observer: Observer = (
        AnthropicStreamUsage() if upstream_format == "anthropic" else OpenAIStreamUsage()
    )
    translator: Translator | None = None
    kept: list[bytes] = []
    source = _prepend(first_chunk, chunks)
    try:
        if upstream_format != call.client_format:
            relayed = _translated(call, source, translator := _translator(call))
        elif call.hide_usage_chunk:
            relayed = _without_usage_chunk(source, observer, kept)
        else:
            relayed = _observed(source, observer, call.client_format, kept)
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
        if translator is not None:
            _account_translated(call, translator)
        else:
            if observer.usage_estimated and kept:
                # Rare path: the stream ended without its usage; estimate from its content.
                observer = _fresh(observer)
                late = SSEParser()
                for run in kept:
                    for event in late.feed(run):
                        observer.feed(event)
            note_stream(call, observer.usage, observer.stop_reason, upstream_format)
        await response.aclose()


def _fresh(observer: Observer) -> Observer:
    return (
        AnthropicStreamUsage()
        if isinstance(observer, AnthropicStreamUsage)
        else OpenAIStreamUsage()
    )


def _account_translated(call: Call, translator: Translator) -> None:
    usage = usage_from_anthropic(translator.usage)
    if translator.usage_estimated:
        usage = replace(usage, estimated=True)
    note_stream(call, usage, translator.stop_reason, "anthropic")


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _observed(
    chunks: AsyncIterator[bytes], observer: Observer, fmt: WireFormat, kept: list[bytes]
) -> AsyncIterator[bytes]:
    """Pass chunks through untouched; parse only the runs of events that hold usage, a stop
    reason or an error (found by byte markers), and keep the others by reference in `kept`
    so that a stream which never reports its usage can still be estimated at the end."""
    parser = SSEParser()
    pending = b""
    for_parser = False
    async for chunk in chunks:
        if b"\r" in chunk:
            for_parser = True  # CRLF framing: give up on the fast path for this stream
        if for_parser:
            for event in parser.feed(pending + chunk):
                observer.feed(event)
            pending = b""
        else:
            data = pending + chunk if pending else chunk
            cut = complete_events(data)
            if cut:
                ready, pending = data[:cut], data[cut:]
                kept.append(ready)
                marked = accounting_events(ready, fmt)
                if marked:
                    for event in parser.feed(marked):
                        observer.feed(event)
            else:
                pending = data
        yield chunk


async def _without_usage_chunk(
    chunks: AsyncIterator[bytes], observer: Observer, kept: list[bytes]
) -> AsyncIterator[bytes]:
    """As `_observed`, for an OpenAI stream whose usage chunk the gateway asked for on its
    own account: runs of complete events are relayed, and the usage chunk is cut out of the
    one run that holds it."""
    parser = SSEParser()
    pending = b""
    async for chunk in chunks:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        data = pending + chunk if pending else chunk
        cut = complete_events(data)
        if not cut:
            pending = data
            continue
        ready, pending = data[:cut], data[cut:]
        if not holds_accounting(ready, "openai"):
            kept.append(ready)
            yield ready
            continue
        out: list[bytes] = []
        for event in parser.feed(ready):
            observer.feed(event)
            if not _is_usage_chunk(event):
                out.append(frame_event(event.event, event.data))
        if out:
            yield b"".join(out)
    if pending:
        yield pending


def _is_usage_chunk(event: SSEEvent) -> bool:
    # The usage chunk is the one with no choices: `{"choices": [], "usage": {...}}`.
    return '"choices":[]' in event.data.replace(" ", "") and '"usage"' in event.data


def _translator(call: Call) -> Translator:
    if call.client_format == "openai":
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return AnthropicToOpenAIStream(call.model, include_usage)
    return OpenAIToAnthropicStream(call.model, request_input_tokens(call.body))


async def _translated(
    call: Call, chunks: AsyncIterator[bytes], translator: Translator
) -> AsyncIterator[bytes]:
    """Translate event by event; the translator, which reads every event anyway, also
    keeps the usage and stop reason (in Anthropic's terms) for accounting."""
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
