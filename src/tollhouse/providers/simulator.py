"""The built-in simulator as a provider, in the same process: no socket, same interface.

The request's timeout bounds the wait for the status line, as over HTTP, so a `hang` or
`slow-first-byte` fault surfaces as `UpstreamTimeoutError`; a `reset` fault raises
`UpstreamConnectionError` from `send`, as a dropped connection does before any response; and
`read_idle_timeout` bounds the silence between chunks, as the HTTP transport's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tollhouse.providers.base import (
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeoutError,
    WrappedResponse,
)
from tollhouse.simulator.engine import Simulator
from tollhouse.types import WireFormat
from tollhouse.wire.body_bounds import let_others_run

# What an Anthropic SDK sends; the simulator reads it to answer `/v1/models` in this shape.
_ANTHROPIC_VERSION = "2023-06-01"


class SimulatorProvider:
    def __init__(self, name: str, wire_format: WireFormat, simulator: Simulator) -> None:
        self.name = name
        self.wire_format: WireFormat = wire_format
        # The simulated OpenAI speaks both of its APIs, as OpenAI does.
        self.wire_formats: tuple[WireFormat, ...] = (
            (wire_format, "responses") if wire_format == "openai" else (wire_format,)
        )
        self.simulator = simulator
        self.simulator_headers = True

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.wire_format == "openai":
            # OpenAI paths are relative to a base URL that ends in /v1.
            path = "/v1" + request.path
        else:
            path = request.path
            headers.setdefault("anthropic-version", _ANTHROPIC_VERSION)
        # A real upstream is a network hop away: the gateway's loop runs on meanwhile.
        await let_others_run(len(request.body))
        try:
            async with asyncio.timeout(request.timeout):
                response = await self.simulator.handle(request.method, path, headers, request.body)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"simulator sent no response within {request.timeout:g} s"
            ) from exc
        if request.read_idle_timeout is None:
            return response
        return _IdleBounded(response, request.read_idle_timeout)

    async def aclose(self) -> None:
        """Nothing to release: no connection is held."""


class _IdleBounded(WrappedResponse):
    """A simulator response whose chunks may not be further apart than `idle` seconds."""

    def __init__(self, response: UpstreamResponse, idle: float) -> None:
        super().__init__(response)
        self._idle = idle

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._response.iter_chunks())
        while True:
            try:
                async with asyncio.timeout(self._idle):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise UpstreamTimeoutError(f"simulator sent nothing for {self._idle:g} s") from exc
            yield chunk
