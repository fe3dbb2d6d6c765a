"""The request one attempt sends to its deployment, built from the client's request.

Same format in and out: the client's bytes are forwarded untouched (unknown fields and all)
unless the model id must change, in which case only `model` is rewritten, or the route
places prompt-cache breakpoints on an Anthropic-format upstream (cache_breakpoints.py).
A rewritten body keeps the client's keys in their order, so a prompt's prefix stays the
same bytes from call to call and an OpenAI upstream's automatic prefix cache keeps hitting.
Cross format: the request is translated here, and the answer is translated back by
`answer_reply` (whole answers) or `stream_relay` (streams).

Of the client's headers only those that mean something to the upstream's format go on
(`anthropic-version`, `anthropic-beta`); credentials never (the provider adds its own), nor
the gateway's own `x-tollhouse-*`; the simulator's test headers (`x-simulator-*`) reach a
simulator only, never a real provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollhouse.call import Call
from tollhouse.catalog.models import ParameterRule
from tollhouse.config.prompt_cache import AutoBreakpoints
from tollhouse.errors import BadRequest, TollhouseError
from tollhouse.providers.base import Provider, UpstreamRequest
from tollhouse.stages.dispatch.cache_breakpoints import with_auto_breakpoints
from tollhouse.stages.shape.parameter_rules import without_rejected
from tollhouse.wire.formats import Format, upstream_format

_SIMULATOR_PREFIX = "x-simulator-"


def _upstream_headers(
    headers: Mapping[str, str], upstream: Format, simulator: bool
) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k.startswith(_SIMULATOR_PREFIX)} if simulator else {}
    for name in upstream.passthrough_headers:
        value = headers.get(name)
        if value:
            out[name] = value
    return out


def spoken_format(call: Call, provider: Provider) -> Format:
    """The format `provider` is sent `call` in, and answers in: the client's own when the
    provider speaks it, else the provider's native one (`wire.formats.upstream_format`)."""
    return upstream_format(call.client_format, provider.wire_format, provider.wire_formats)


def build_upstream_request(
    call: Call,
    provider: Provider,
    upstream_model: str,
    timeout: float | None,
    parameter_rules: tuple[ParameterRule, ...] = (),
    breakpoints: AutoBreakpoints | None = None,
) -> UpstreamRequest:
    """The request for `upstream_model` on `provider`; parameters that `parameter_rules`
    (the deployment's, stages/shape/parameter_rules.py) refuse are left out, and a format
    that takes prompt-cache breakpoints gets those `breakpoints` places (the deployment's,
    stages/dispatch/cache_breakpoints.py), on this request only."""
    upstream = spoken_format(call, provider)
    if breakpoints is not None and not (
        upstream.places_cache_breakpoints and call.endpoint != "count_tokens"
    ):
        breakpoints = None
    body = _upstream_body(call, upstream, upstream_model, parameter_rules, breakpoints)
    return UpstreamRequest(
        path=upstream.upstream_paths[call.endpoint],
        body=body,
        stream=call.stream,
        headers=_upstream_headers(call.headers, upstream, provider.simulator_headers),
        timeout=timeout,
    )


def _upstream_body(
    call: Call,
    upstream: Format,
    upstream_model: str,
    parameter_rules: tuple[ParameterRule, ...],
    breakpoints: AutoBreakpoints | None,
) -> bytes:
    body = without_rejected(call, parameter_rules, call.body) if parameter_rules else call.body
    if call.client_format == upstream.name:
        if breakpoints is not None:
            body = with_auto_breakpoints(body, breakpoints)
        changes: dict[str, Any] = {}
        if body.get("model") != upstream_model:
            changes["model"] = upstream_model
        usage_changes = upstream.usage_request_changes(body) if call.stream else None
        if usage_changes:
            # Usage is needed to price the call; the client, which did not ask for it,
            # will not see it (see stream_relay).
            changes.update(usage_changes)
            call.hide_usage_chunk = True
        if not changes and body is call.body:
            return call.raw_body
        return orjson.dumps({**body, **changes})
    try:
        doc = upstream.request_from(call.client_format, body, upstream_model)
    except TollhouseError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(
            f"request cannot be translated for a {upstream.name} upstream: {exc}"
        ) from None
    if breakpoints is not None:
        doc = with_auto_breakpoints(doc, breakpoints)
    return orjson.dumps(doc)
