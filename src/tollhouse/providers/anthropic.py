"""The Anthropic API (or anything that speaks it at an Anthropic-style root URL)."""

from __future__ import annotations

from collections.abc import Mapping

from tollhouse.providers.base import UpstreamRequest, UpstreamResponse, WireFormat
from tollhouse.providers.http_transport import HttpTransport

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider:
    wire_format: WireFormat = "anthropic"

    def __init__(self, name: str, transport: HttpTransport) -> None:
        self.name = name
        self._transport = transport

    @staticmethod
    def auth_headers(api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
        headers = dict(extra)
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if "anthropic-version" not in request.headers:
            request.headers = {**request.headers, "anthropic-version": DEFAULT_ANTHROPIC_VERSION}
        return await self._transport.send(request)

    async def aclose(self) -> None:
        await self._transport.aclose()
