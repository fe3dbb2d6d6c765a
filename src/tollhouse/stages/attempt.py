"""One attempt at one deployment: send, then either a usable answer or a classified failure.

For a stream, the attempt waits for the first chunk before it counts as a success: until a
byte has reached the client a failure can still be retried or sent to a fallback, unseen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from tollhouse.call import Call
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
    WireFormat,
)
from tollhouse.reliability.backoff import retry_after_seconds
from tollhouse.reliability.failure_class import FailureClass, classify_status
from tollhouse.stages.route import Target
from tollhouse.stages.upstream_request import build_upstream_request


@dataclass(slots=True)
class Failure:
    kind: FailureClass
    message: str
    target: Target
    status: int | None = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None


@dataclass(slots=True)
class Answer:
    """A started answer: a whole body, or a stream whose first chunk is already in hand."""

    target: Target
    response: UpstreamResponse
    body: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    first_chunk: bytes = b""

    @property
    def upstream_format(self) -> WireFormat:
        return self.target.provider.wire_format


async def attempt(
    call: Call, target: Target, first_byte_timeout: float, read_idle: float | None
) -> Answer | Failure:
    provider = target.provider
    request = build_upstream_request(
        call, provider.wire_format, target.upstream_model, first_byte_timeout
    )
    request.read_idle_timeout = read_idle
    try:
        response = await provider.send(request)
    except UpstreamTimeoutError as exc:
        return Failure("timeout", f"{target.label}: {exc}", target)
    except UpstreamConnectionError as exc:
        return Failure("connection", f"{target.label}: {exc}", target)

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
                return Answer(target, response, body=await response.read())
        chunks = aiter(response.iter_chunks())
        async with asyncio.timeout(first_byte_timeout):
            first = await anext(chunks, b"")
        return Answer(target, response, chunks=chunks, first_chunk=first)
    except (TimeoutError, UpstreamTimeoutError):
        await response.aclose()
        return Failure("timeout", f"{target.label}: answer did not start in time", target)
    except UpstreamConnectionError as exc:
        await response.aclose()
        return Failure("connection", f"{target.label}: {exc}", target)
    except BaseException:
        await response.aclose()
        raise
