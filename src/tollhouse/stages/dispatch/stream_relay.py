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

from tollhouse.accounting import usage_from_anthropic
from tollhouse.call import Call
from tollhouse.errors import TollhouseError
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from tollhouse.stages.account import note_stream
from tollhouse.stages.check.structured_output import OutputRequirement
from tollhouse.stages.check.structured_stream import validate_stream_at_end
from tollhouse.stages.check.truncation import refuse_truncated_stream
from tollhouse.stages.dispatch.stream_markers import (
    accounting_events,
    complete_events,
    holds_accounting,
)
from tollhouse.wire.formats import OPENAI, Format, StreamTranslator, StreamUsage
from tollhouse.wire.sse import SSEEvent, SSEParser, frame_event


async def relay_stream(
    call: Call,
    response: UpstreamResponse,
    upstream: Format,
    chunks: AsyncIterator[bytes],
    first_chunk: bytes,
    refuse_truncated: bool = False,
    structured: OutputRequirement | None = None,
) -> AsyncIterator[bytes]:
    """The client's stream: `first_chunk` (read before the reply was committed, so that a
    failure up to then could still be retried), then the rest of `chunks`.
    `refuse_truncated`: the route refuses cut answers (see `stages.check.truncation`);
    `structured`: the answer must be structured output (`stages.check.structured_stream`)."""
    observer = upstream.stream_usage()
    translator: StreamTranslator | None = None
    kept = _Unparsed(upstream)
    source = _prepend(first_chunk, chunks)
    try:
        if upstream.name != call.client_format:
            translator = call.wire.stream_from(upstream.name, call.body, call.model)
            relayed = _translated(source, translator)
        elif call.hide_usage_chunk:
            relayed = _without_usage_chunk(source, observer, kept)
        else:
            relayed = _observed(source, observer, upstream, kept)
        if refuse_truncated:

            def stop_reason() -> str | None:
                if translator is not None:
                    return translator.stop_reason
                return upstream.stop_reason(observer.stop_reason)

            relayed = refuse_truncated_stream(call, relayed, stop_reason)
        if structured is not None:
            relayed = validate_stream_at_end(call, relayed, structured)
        async for chunk in relayed:
            yield chunk
    except UpstreamTimeoutError:
        yield call.wire.stream_error_event(
            "upstream stream went silent; the answer is incomplete", 504
        )
    except UpstreamConnectionError:
        yield call.wire.stream_error_event(
            "upstream connection broke mid-stream; the answer is incomplete", 502
        )
    except TollhouseError as exc:
        yield call.wire.stream_error_event(f"{exc.message}; the answer is incomplete", exc.status)
    finally:
        if translator is not None:
            _account_translated(call, translator)
        else:
            if observer.usage_estimated:
                # Rare path: the stream ended without its usage; estimate from its content.
                observer = kept.observer() or observer
            note_stream(call, observer.usage, observer.stop_reason, upstream.name)
        await response.aclose()


def _account_translated(call: Call, translator: StreamTranslator) -> None:
    usage = usage_from_anthropic(translator.usage)
    if translator.usage_estimated:
        usage = replace(usage, estimated=True)
    note_stream(call, usage, translator.stop_reason, "anthropic")


# Bytes of relayed events held unparsed before they are parsed and let go.
_UNPARSED_BOUND = 1 << 20


class _Unparsed:
    """The runs of events a same-format relay passed on without parsing, for an estimate of
    the output should the stream never report its usage. Kept by reference up to
    `_UNPARSED_BOUND` bytes, then parsed into an observer of their own and let go: a stream
    holds a bounded buffer and a count, however long it runs, and a short one (nearly all)
    is never parsed twice."""

    __slots__ = ("_fmt", "_observer", "_parser", "_runs", "_size")

    def __init__(self, fmt: Format) -> None:
        self._fmt = fmt
        self._runs: list[bytes] = []
        self._size = 0
        self._observer: StreamUsage | None = None
        self._parser: SSEParser | None = None

    def add(self, run: bytes) -> None:
        self._runs.append(run)
        self._size += len(run)
        if self._size > _UNPARSED_BOUND:
            self._fold()

    def observer(self) -> StreamUsage | None:
        """An observer that has seen every run added, or None when none was."""
        if self._runs:
            self._fold()
        return self._observer

    def _fold(self) -> None:
        if self._observer is None or self._parser is None:
            self._observer = self._fmt.stream_usage()
            self._parser = SSEParser()
        for run in self._runs:
            for event in self._parser.feed(run):
                self._observer.feed(event)
        self._runs.clear()
        self._size = 0


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _observed(
    chunks: AsyncIterator[bytes], observer: StreamUsage, fmt: Format, kept: _Unparsed
) -> AsyncIterator[bytes]:
    """Pass chunks through untouched; parse only the runs of events that hold usage, a stop
    reason or an error (found by byte markers), and hand every run to `kept` so that a
    stream which never reports its usage can still be estimated at the end."""
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
                kept.add(ready)
                marked = accounting_events(ready, fmt)
                if marked:
                    for event in parser.feed(marked):
                        observer.feed(event)
            else:
                pending = data
        yield chunk


async def _without_usage_chunk(
    chunks: AsyncIterator[bytes], observer: StreamUsage, kept: _Unparsed
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
        if not holds_accounting(ready, OPENAI):
            kept.add(ready)
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


async def _translated(
    chunks: AsyncIterator[bytes], translator: StreamTranslator
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
