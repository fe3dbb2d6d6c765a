"""A provider reached over HTTP: the Anthropic API, the OpenAI API, or any server that speaks
one of the two dialects (vLLM, Ollama, llama.cpp server, ...). The dialect decides only the
wire format and how the gateway's key is presented; everything else is the transport's."""

from __future__ import annotations

from tollhouse.providers.base import UpstreamRequest, UpstreamResponse, WireFormat
from tollhouse.providers.http_transport import HttpTransport

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


def credential_headers(wire_format: WireFormat, api_key: str | None) -> dict[str, str]:
    if not api_key:
        return {}
    if wire_format == "anthropic":
        return {"x-api-key": api_key}
    return {"authorization": f"Bearer {api_key}"}


class HttpProvider:
    def __init__(self, name: str, wire_format: WireFormat, transport: HttpTransport) -> None:
        self.name = name
        self.wire_format: WireFormat = wire_format
        self._transport = transport

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self.wire_format == "anthropic" and "anthropic-version" not in request.headers:
            request.headers = {**request.headers, "anthropic-version": DEFAULT_ANTHROPIC_VERSION}
        return await self._transport.send(request)

    async def aclose(self) -> None:
        await self._transport.aclose()
