"""A provider reached over HTTP: the Anthropic API, the OpenAI API, or any server that speaks
one of the two dialects (vLLM, Ollama, llama.cpp server, ...). The dialect decides only the
wire format and how the gateway's key is presented; everything else is the transport's."""

from __future__ import annotations

from tollhouse.providers.base import UpstreamRequest, UpstreamResponse
from tollhouse.providers.http_transport import HttpTransport
from tollhouse.providers.secret_redaction import RedactedResponse, SecretRedactor
from tollhouse.types import WireFormat

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


def credential_headers(wire_format: WireFormat, api_key: str | None) -> dict[str, str]:
    if not api_key:
        return {}
    if wire_format == "anthropic":
        return {"x-api-key": api_key}
    return {"authorization": f"Bearer {api_key}"}


class HttpProvider:
    """`api_key` is only used to keep it out of what the upstream sends back: an error
    body or a stream's error event the gateway relays to its client never carries the
    gateway's own credential, even from an upstream that echoes it (the transport is what
    sends it)."""

    def __init__(
        self,
        name: str,
        wire_format: WireFormat,
        transport: HttpTransport,
        *,
        api_key: str | None = None,
        simulator_headers: bool = False,
        wire_formats: tuple[WireFormat, ...] | None = None,
    ) -> None:
        self.name = name
        self.wire_format: WireFormat = wire_format
        self.wire_formats: tuple[WireFormat, ...] = wire_formats or (wire_format,)
        self.simulator_headers = simulator_headers
        self._transport = transport
        self._redactor = SecretRedactor(api_key.encode()) if api_key else None

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self.wire_format == "anthropic" and "anthropic-version" not in request.headers:
            request.headers = {**request.headers, "anthropic-version": DEFAULT_ANTHROPIC_VERSION}
        response = await self._transport.send(request)
        if self._redactor is not None:
            return RedactedResponse(response, self._redactor)
        return response

    @property
    def transport(self) -> HttpTransport:
        return self._transport

    async def aclose(self) -> None:
        await self._transport.aclose()
