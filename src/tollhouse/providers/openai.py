"""The OpenAI API and every server that speaks its Chat Completions dialect (vLLM, Ollama,
llama.cpp server, ...): the same adapter, with or without a key."""

from __future__ import annotations

from collections.abc import Mapping

from tollhouse.providers.base import UpstreamRequest, UpstreamResponse, WireFormat
from tollhouse.providers.http_transport import HttpTransport


class OpenAIProvider:
    wire_format: WireFormat = "openai"

    def __init__(self, name: str, transport: HttpTransport) -> None:
        self.name = name
        self._transport = transport

    @staticmethod
    def auth_headers(api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
        headers = dict(extra)
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        return await self._transport.send(request)

    async def aclose(self) -> None:
        await self._transport.aclose()
