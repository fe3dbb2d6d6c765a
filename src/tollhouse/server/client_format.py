"""Which wire format a client speaks, guessed from a request's path and headers when its
endpoint does not say (unknown paths, requests we cannot even parse)."""

from __future__ import annotations

from tollhouse.types import WireFormat


def guess_format(path: str, headers: dict[str, str]) -> WireFormat:
    """The wire format to answer in when the path alone does not say."""
    if path.startswith("/v1/messages") or "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    return "openai"
