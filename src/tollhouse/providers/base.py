"""The one interface between the gateway and any upstream.

A provider adapter takes an `UpstreamRequest` already in the provider's own wire format and
returns an `UpstreamResponse` as soon as the status and headers are known; the body is then
read whole (`read`) or relayed chunk by chunk (`iter_chunks`) as it arrives. Nothing above this
interface knows whether the bytes came over TLS from a provider, over loopback from the
simulator's server, or from the simulator in the same process.

Failures to reach the upstream or to read its body raise `UpstreamConnectionError`
(reset, refused, broken stream) or `UpstreamTimeoutError`; an HTTP error status is not an
exception here, it is a response like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tollhouse.types import WireFormat


class UpstreamConnectionError(Exception):
    """The upstream could not be reached, or the connection broke mid-body."""


class UpstreamTimeoutError(Exception):
    """The upstream did not answer (or went silent mid-stream) within the allowed time."""


@dataclass(slots=True)
class UpstreamRequest:
    """A request in the upstream's own wire format.

    `path` is relative to the provider's API root, e.g. `/v1/messages` or `/chat/completions`;
    `headers` are the ones to pass on from the client (`anthropic-version`, `anthropic-beta`,
    ...), the adapter adds credentials. `timeout` bounds the wait for the status line;
    `read_idle_timeout` (when set) the silence between body chunks. `pool_wait` is set by
    the transport: the seconds this request waited for a free upstream connection.
    """

    path: str
    body: bytes
    stream: bool
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    method: str = "POST"
    read_idle_timeout: float | None = None
    pool_wait: float = 0.0


class UpstreamResponse(Protocol):
    @property
    def status(self) -> int:
        """The HTTP status of the upstream's answer."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names in lower case."""
        ...

    async def read(self) -> bytes:
        """The whole body. Raises UpstreamConnectionError / UpstreamTimeoutError."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive, never re-buffered. Raises as `read` does."""
        ...

    async def aclose(self) -> None:
        """Release the connection; cancels the upstream call if the body is unread."""
        ...


class WrappedResponse:
    """An `UpstreamResponse` that passes everything on to the one it wraps: a base for
    wrappers that change one part of it (the body, its pace) and keep the rest."""

    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        return await self._response.read()

    def iter_chunks(self) -> AsyncIterator[bytes]:
        return self._response.iter_chunks()

    async def aclose(self) -> None:
        await self._response.aclose()


class Provider(Protocol):
    """An upstream reachable in its native wire format, and perhaps others."""

    name: str
    wire_format: WireFormat
    # Every format it speaks, its native `wire_format` first: a client's call in one of them
    # is passed through, any other is translated to the native one.
    wire_formats: tuple[WireFormat, ...]
    # Whether the client's `x-simulator-*` test headers reach this upstream: a simulator's
    # only, never a real provider's.
    simulator_headers: bool

    async def send(self, request: UpstreamRequest) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...
