"""One attempt at one deployment: send, then either a usable answer or a classified failure.

A stream counts as a success only once its first content event has arrived: the preamble
before it (`message_start`, `ping`, an empty role chunk) carries nothing a user can see, so
it is held back (a few hundred bytes) and any failure up to then, an error event or a broken
connection, is retried or sent to a fallback unseen. Content is never held: from the first
content event on, chunks are relayed as they arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from tollhouse.call import Call
from tollhouse.config.model import EscalationName
from tollhouse.errors import TollhouseError
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from tollhouse.reliability.backoff import retry_after_seconds
from tollhouse.reliability.failure_class import FailureClass, classify_status
from tollhouse.stages.dispatch.stream_markers import complete_events, may_hold_error
from tollhouse.stages.dispatch.upstream_request import build_upstream_request, spoken_format
from tollhouse.stages.route import Target
from tollhouse.types import Reply
from tollhouse.wire.formats import EventVerdict, Format
from tollhouse.wire.sse import SSEParser


@dataclass(slots=True)
class Failure:
    """An attempt that did not answer the client: a failure of its `kind`, or an answer
    that escalates to a dearer candidate (stages/dispatch/escalation.py), which keeps
    what the client gets if none answers better (`kept`)."""

    kind: FailureClass | EscalationName
    message: str
    target: Target
    status: int | None = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    kept: Reply | TollhouseError | None = None


@dataclass(slots=True)
class Answer:
    """A started answer: a whole body, or a stream whose first chunk is already in hand."""

    target: Target
    response: UpstreamResponse
    body: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    first_chunk: bytes = b""
    fmt: Format | None = None  # the format the upstream answered in

    @property
    def upstream_format(self) -> Format:
        assert self.fmt is not None
        return self.fmt


async def attempt(
    call: Call, target: Target, first_byte_timeout: float, read_idle: float | None
) -> Answer | Failure:
    """One try at `target`, a child span of the call's when tracing is on. An attempt
    cancelled before its verdict (the client went away, or a hedge's other attempt won)
    hands a half-open breaker's probe back."""
    span = call.trace.attempt_started(call, target) if call.trace is not None else None
    try:
        outcome = await _attempt(call, target, first_byte_timeout, read_idle)
    except asyncio.CancelledError:
        target.breaker.release_probe()
        if span is not None:
            span.cancelled()
        raise
    if span is not None:
        span.ended(outcome)
    return outcome


async def _attempt(
    call: Call, target: Target, first_byte_timeout: float, read_idle: float | None
) -> Answer | Failure:
    provider = target.provider
    request = build_upstream_request(
        call,
        provider,
        target.upstream_model,
        first_byte_timeout,
        target.parameter_rules,
        target.breakpoints,
    )
    request.read_idle_timeout = read_idle
    try:
        response = await provider.send(request)
    except UpstreamTimeoutError as exc:
        return Failure("timeout", f"{target.label}: {exc}", target)
    except UpstreamConnectionError as exc:
        return Failure("connection", f"{target.label}: {exc}", target)
    finally:
        call.pool_wait += request.pool_wait

    if response.status >= 400:
        try:
            body = await response.read()
        except (UpstreamTimeoutError, UpstreamConnectionError):
            body = b""
        return Failure(
            classify_status(response.status, body),
            f"{target.label} answered HTTP {response.status}",
            target,
            status=response.status,
            body=body,
            headers=response.headers,
            retry_after=retry_after_seconds(response.headers),
        )
    try:
        if not call.stream:
            async with asyncio.timeout(first_byte_timeout):
                body = await response.read()
                return Answer(target, response, body=body, fmt=spoken_format(call, provider))
        chunks = aiter(response.iter_chunks())
        async with asyncio.timeout(first_byte_timeout):
            held = await _hold_preamble(chunks, spoken_format(call, provider))
        if isinstance(held, str):
            await response.aclose()
            return Failure(
                _stream_error_class(held), f"{target.label}: stream error: {held}", target
            )
        fmt = spoken_format(call, provider)
        return Answer(target, response, chunks=chunks, first_chunk=held, fmt=fmt)
    except (TimeoutError, UpstreamTimeoutError):
        await response.aclose()
        return Failure("timeout", f"{target.label}: answer did not start in time", target)
    except UpstreamConnectionError as exc:
        await response.aclose()
        return Failure("connection", f"{target.label}: {exc}", target)
    except BaseException:
        await response.aclose()
        raise


# Held preamble larger than this is relayed anyway: it is not a preamble any more.
_PREAMBLE_LIMIT = 64 * 1024


async def _hold_preamble(chunks: AsyncIterator[bytes], fmt: Format) -> bytes | str:
    """Read until the first content event; the bytes read, or the upstream's error type
    (a str) when the stream failed before any content. Byte markers find both without
    parsing the events; only a run that may hold an error is parsed, to be sure."""
    held: list[bytes] = []
    size = 0
    async for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        data = b"".join(held) if len(held) > 1 else chunk
        # Markers are looked for in an LF view, so CRLF-framed streams are not held whole.
        view = data.replace(b"\r\n", b"\n") if b"\r" in data else data
        complete = view[: complete_events(view)]
        if not complete:
            if size > _PREAMBLE_LIMIT:
                break
            continue
        if may_hold_error(complete, fmt):
            verdict = _first_verdict(complete, fmt)
            if verdict is not None:
                return verdict if isinstance(verdict, str) else data
        elif fmt.content_started(complete) or size > _PREAMBLE_LIMIT:
            return data
    return b"".join(held)


def _first_verdict(events: bytes, fmt: Format) -> EventVerdict:
    for event in SSEParser().feed(events):
        verdict = fmt.classify_event(event)
        if verdict is not None:
            return verdict
    return None


def _stream_error_class(error_type: str) -> FailureClass:
    if "rate_limit" in error_type:
        return "rate_limit"
    if "overloaded" in error_type:
        return "overloaded"
    if "timeout" in error_type:
        return "timeout"
    return "server_error"
