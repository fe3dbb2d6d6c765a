"""Dispatch: send the call to its upstream and turn the answer into the client's reply.

Upstream errors are relayed with their status and type (translated when the formats
differ); failures to reach the upstream become gateway errors in the client's format.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollhouse.call import Call
from tollhouse.errors import UpstreamError, UpstreamTimeout
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from tollhouse.server.reply import SSE_CONTENT_TYPE, Reply
from tollhouse.stages.route import Target
from tollhouse.stages.stream_relay import relay_stream
from tollhouse.stages.upstream_request import build_upstream_request
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.wire.anthropic_openai import (
    anthropic_response_to_openai,
    openai_response_to_anthropic,
    translate_error_body,
)

# Upstream headers a client may act on when relayed with an error.
_RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms")


def upstream_request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("request-id") or headers.get("x-request-id")


async def dispatch(call: Call, target: Target, first_byte_timeout: float | None) -> Reply:
    provider = target.provider
    upstream = provider.wire_format
    call.provider_name = provider.name
    call.upstream_model = target.upstream_model

    if call.endpoint == "count_tokens" and upstream != "anthropic":
        # No count endpoint in the OpenAI dialect: answer with the documented estimate.
        return Reply(
            status=200, body=orjson.dumps({"input_tokens": request_input_tokens(call.body)})
        )

    request = build_upstream_request(call, upstream, target.upstream_model, first_byte_timeout)
    try:
        response = await provider.send(request)
    except UpstreamTimeoutError as exc:
        raise UpstreamTimeout(f"upstream {provider.name} timed out: {exc}") from None
    except UpstreamConnectionError as exc:
        raise UpstreamError(f"upstream {provider.name} is unreachable: {exc}") from None

    call.upstream_request_id = upstream_request_id(response.headers)
    call.status = response.status
    if response.status >= 400:
        return await _error_reply(call, response, upstream)
    if call.stream:
        reply = Reply(status=200, stream=relay_stream(call, response, upstream))
        reply.content_type = SSE_CONTENT_TYPE
        return reply
    return Reply(status=response.status, body=await _read_body(call, response, upstream))


async def _read_body(call: Call, response: UpstreamResponse, upstream: str) -> bytes:
    try:
        body = await response.read()
    except UpstreamTimeoutError as exc:
        raise UpstreamTimeout(f"upstream timed out mid-body: {exc}") from None
    except UpstreamConnectionError as exc:
        raise UpstreamError(f"upstream connection broke mid-body: {exc}") from None
    if upstream == call.client_format:
        return body
    try:
        doc = orjson.loads(body)
        if call.client_format == "openai":
            return orjson.dumps(anthropic_response_to_openai(doc, call.model))
        return orjson.dumps(openai_response_to_anthropic(doc, call.model))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamError(f"upstream answer could not be translated: {exc!r}") from None


async def _error_reply(call: Call, response: UpstreamResponse, upstream: str) -> Reply:
    try:
        body = await response.read()
    except (UpstreamTimeoutError, UpstreamConnectionError):
        body = b""
    status = response.status
    if status in (401, 403):
        # The client's own key was accepted by the gateway; this is the gateway's provider
        # credential failing, which the client can neither see nor fix.
        raise _ProviderCredentialsRejected(status, call)
    if upstream != call.client_format or not _is_error_body(body, upstream):
        body = translate_error_body(body, status, call.client_format)
    reply = Reply(status=status, body=body)
    for name in _RELAYED_ERROR_HEADERS:
        value = response.headers.get(name)
        if value:
            reply.add_header(name, value)
    return reply


def _is_error_body(body: bytes, fmt: str) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(doc, dict):
        return False
    error = doc.get("error")
    if fmt == "anthropic":
        return doc.get("type") == "error" and isinstance(error, dict)
    return isinstance(error, dict) and "message" in error


class _ProviderCredentialsRejected(UpstreamError):
    def __init__(self, status: int, call: Call) -> None:
        super().__init__(
            f"the upstream provider {call.provider_name} rejected the gateway's credentials "
            f"(HTTP {status}); the operator must fix the provider key"
        )
