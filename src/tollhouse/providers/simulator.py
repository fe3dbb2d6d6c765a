"""The built-in simulator as a provider, in the same process: no socket, same interface.

The request's timeout bounds the wait for the status line, as over HTTP, so a `hang` or
`slow-first-byte` fault surfaces as `UpstreamTimeoutError`; a `reset` fault raises
`UpstreamConnectionError` from `send`, as a dropped connection does before any response.
"""

from __future__ import annotations

import asyncio

from tollhouse.providers.base import (
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeoutError,
    WireFormat,
)
from tollhouse.simulator.engine import Simulator

# What an Anthropic SDK sends; the simulator reads it to answer `/v1/models` in this shape.
_ANTHROPIC_VERSION = "2023-06-01"


class SimulatorProvider:
    def __init__(self, name: str, wire_format: WireFormat, simulator: Simulator) -> None:
        self.name = name
        self.wire_format: WireFormat = wire_format
        self.simulator = simulator

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.wire_format == "openai":
            # OpenAI paths are relative to a base URL that ends in /v1.
            path = "/v1" + request.path
        else:
            path = request.path
            headers.setdefault("anthropic-version", _ANTHROPIC_VERSION)
        try:
            async with asyncio.timeout(request.timeout):
                return await self.simulator.handle(request.method, path, headers, request.body)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"simulator sent no response within {request.timeout:g} s"
            ) from exc

    async def aclose(self) -> None:
        """Nothing to release: no connection is held."""
