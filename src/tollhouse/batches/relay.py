"""One request of the batch API to the provider that holds the batch, with the gateway's
own credentials (the provider adapter adds them; the client's gateway key never leaves).

Paths are the client's (`/v1/messages/batches/...`, `/v1/batches/...`, `/v1/files/...`),
made relative to the provider's API root as every adapter expects (an OpenAI-format
provider's base URL ends in `/v1`). A provider that can't be reached is a 502 in the
client's format; any answer it gives, error or not, is the caller's to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from tollhouse.config.model import TimeoutsConfig
from tollhouse.errors import UpstreamError
from tollhouse.providers.base import (
    Provider,
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)
from tollhouse.types import JSON_CONTENT_TYPE, Reply
from tollhouse.wire.formats import FORMATS


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    status: int
    body: bytes
    request_id: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> object:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def reply(self, content_type: bytes = JSON_CONTENT_TYPE) -> Reply:
        """The provider's answer as the client gets it, status and body unchanged."""
        return Reply(status=self.status, body=self.body, content_type=content_type)


def passthrough_headers(provider: Provider, headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that mean something to `provider`'s format
    (`anthropic-version`, `anthropic-beta`...)."""
    names = FORMATS[provider.wire_format].passthrough_headers
    return {name: headers[name] for name in names if name in headers}


async def relay(
    provider: Provider,
    method: str,
    path: str,
    timeouts: TimeoutsConfig,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> UpstreamAnswer:
    """Send `method path` to `provider` and read its whole answer."""
    if provider.wire_format != "anthropic" and path.startswith("/v1/"):
        path = path[3:]
    request = UpstreamRequest(
        path=path,
        body=body,
        stream=False,
        headers=dict(headers or {}),
        timeout=timeouts.first_byte,
        method=method,
        read_idle_timeout=timeouts.read_idle,
    )
    try:
        response = await provider.send(request)
        try:
            data = await response.read()
        finally:
            await response.aclose()
    except (UpstreamConnectionError, UpstreamTimeoutError) as error:
        raise UpstreamError(
            f"provider {provider.name} could not be reached for {method} {path}: {error}"
        ) from None
    request_id = response.headers.get("request-id") or response.headers.get("x-request-id")
    return UpstreamAnswer(response.status, data, request_id)
