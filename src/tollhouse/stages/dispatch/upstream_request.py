"""The request one attempt sends to its deployment, built from the client's request.

Same format in and out: the client's bytes are forwarded untouched (unknown fields and all)
unless the model id must change, in which case only `model` is rewritten. Cross format: the
request is translated here, and the answer is translated back by `answer_reply` (whole
answers) or `stream_relay` (streams).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollhouse.call import Call
from tollhouse.errors import BadRequest, TollhouseError
from tollhouse.providers.base import UpstreamRequest
from tollhouse.types import WireFormat
from tollhouse.wire.anthropic_openai import (
    anthropic_request_to_openai,
    openai_request_to_anthropic,
)

# Client headers that carry meaning for the upstream. Credentials are never among them: the
# provider adapter adds the server's own.
_ANTHROPIC_PASSTHROUGH = ("anthropic-version", "anthropic-beta")
_SIMULATOR_PREFIX = "x-simulator-"

_PATHS: dict[tuple[WireFormat, str], str] = {
    ("anthropic", "messages"): "/v1/messages",
    ("anthropic", "chat_completions"): "/v1/messages",
    ("anthropic", "count_tokens"): "/v1/messages/count_tokens",
    ("openai", "chat_completions"): "/chat/completions",
    ("openai", "messages"): "/chat/completions",
}


def passthrough_headers(headers: Mapping[str, str], upstream: WireFormat) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k.startswith(_SIMULATOR_PREFIX)}
    if upstream == "anthropic":
        for name in _ANTHROPIC_PASSTHROUGH:
            value = headers.get(name)
            if value:
                out[name] = value
    return out


def build_upstream_request(
    call: Call, upstream: WireFormat, upstream_model: str, timeout: float | None
) -> UpstreamRequest:
    body = _upstream_body(call, upstream, upstream_model)
    return UpstreamRequest(
        path=_PATHS[(upstream, call.endpoint)],
        body=body,
        stream=call.stream,
        headers=passthrough_headers(call.headers, upstream),
        timeout=timeout,
    )


def _upstream_body(call: Call, upstream: WireFormat, upstream_model: str) -> bytes:
    if call.client_format == upstream:
        changes: dict[str, Any] = {}
        if call.body.get("model") != upstream_model:
            changes["model"] = upstream_model
        if upstream == "openai" and call.stream and not _asks_usage(call.body):
            # Usage is needed to price the call; the client, which did not ask for it,
            # will not see it (see stream_relay).
            options = call.body.get("stream_options")
            changes["stream_options"] = {**(options or {}), "include_usage": True}
            call.hide_usage_chunk = True
        if not changes:
            return call.raw_body
        return orjson.dumps({**call.body, **changes})
    translate = (
        openai_request_to_anthropic if upstream == "anthropic" else anthropic_request_to_openai
    )
    try:
        doc: dict[str, Any] = translate(call.body, upstream_model)
    except TollhouseError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"request cannot be translated for a {upstream} upstream: {exc}") from None
    return orjson.dumps(doc)


def _asks_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
