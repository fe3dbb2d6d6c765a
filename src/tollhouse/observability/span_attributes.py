"""The attributes of a call's spans: the OpenTelemetry GenAI semantic conventions' names
(`gen_ai.*`, `error.type`, `server.*`, `http.response.status_code`), and `tollhouse.*` for
what only the gateway knows (request id, variant, config version, cost, attempts).

Plain data from the `Call`, no opentelemetry import: observability/tracing.py sets them.
Every value is bounded: model names, ids and labels come from the config or were checked by
the stage that set them, and nothing of a prompt or an answer is ever put on a span.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from tollhouse.call import Call
from tollhouse.stages.dispatch.attempt import Failure
from tollhouse.stages.route import Target
from tollhouse.wire.anthropic_openai.stop_reasons import openai_finish_reason

AttributeValue = str | bool | int | float | tuple[str, ...]
Attributes = dict[str, AttributeValue]

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the name before gen_ai.provider.name, which many tools still read
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"  # every prompt token, cached ones included
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

REQUEST_ID = "tollhouse.request_id"
VARIANT = "tollhouse.variant"
CONFIG_VERSION = "tollhouse.config_version"
CLIENT_FORMAT = "tollhouse.client_format"
STREAM = "tollhouse.stream"
COST = "tollhouse.cost_usd"
USAGE_ESTIMATED = "tollhouse.usage.estimated"
ATTEMPTS = "tollhouse.attempts"
FALLBACK = "tollhouse.fallback"
CACHE_HIT = "tollhouse.response_cache"
TRUNCATED = "tollhouse.truncated"
SERVED_BY = "tollhouse.deployment"
PROVIDER_NAME = "tollhouse.provider"
ATTEMPT_OUTCOME = "tollhouse.attempt.outcome"
FAILURE_CLASS = "tollhouse.failure"
GUARDRAIL_NAME = "tollhouse.guardrail.name"
GUARDRAIL_KIND = "tollhouse.guardrail.kind"
GUARDRAIL_ACTION = "tollhouse.guardrail.action"
GUARDRAIL_RESULT = "tollhouse.guardrail.result"
GUARDRAIL_RULE = "tollhouse.guardrail.rule"

_OPERATIONS = {"embeddings": "embeddings", "count_tokens": "count_tokens"}
_MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# A model name is the client's text until the route stage knows it: kept to this length.
MAX_MODEL_CHARS = 256
# OTLP carries integers as int64; a larger one would fail the export of its whole batch.
_INT64_MAX = (1 << 63) - 1


def operation(call: Call) -> str:
    """The GenAI operation: `chat` for a Messages, Chat Completions or Responses call."""
    return _OPERATIONS.get(call.endpoint, "chat")


def requested_model(call: Call) -> str:
    """The model the request asked for, cut to `MAX_MODEL_CHARS`."""
    return call.model[:MAX_MODEL_CHARS]


def call_request(call: Call, operation: str) -> Attributes:
    """What the request says, known when the call's span opens."""
    attributes: Attributes = {
        OPERATION: operation,
        REQUEST_ID: call.request_id,
        CLIENT_FORMAT: call.client_format,
        STREAM: call.stream,
    }
    if call.model:
        attributes[REQUEST_MODEL] = requested_model(call)
    for name in _MAX_TOKENS_FIELDS:
        value = call.body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= _INT64_MAX:
                attributes[REQUEST_MAX_TOKENS] = value
            break
    return attributes


def attempt_request(call: Call, target: Target, operation: str) -> Attributes:
    """An attempt's request: the deployment and the model asked of it."""
    system = target.provider.wire_format
    attributes: Attributes = {
        OPERATION: operation,
        REQUEST_MODEL: target.upstream_model,
        PROVIDER: system,
        SYSTEM: system,
        SERVED_BY: target.label,
        ATTEMPTS: call.attempts,
    }
    base_url = getattr(getattr(target.provider, "transport", None), "base_url", None)
    if isinstance(base_url, str):  # an HTTP provider (the in-process simulator has none)
        server = _server(base_url)
        if server is not None:
            attributes[SERVER_ADDRESS], attributes[SERVER_PORT] = server
    return attributes


@lru_cache(maxsize=256)  # the config's providers' URLs
def _server(base_url: str) -> tuple[str, int] | None:
    url = urlsplit(base_url)
    if not url.hostname:
        return None
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def provider(target: Target) -> Attributes:
    """`gen_ai.provider.name`: the API the deployment speaks (`anthropic`, `openai`);
    `tollhouse.provider` names the configured provider (a simulator, a vLLM server...)."""
    system = target.provider.wire_format
    return {PROVIDER: system, SYSTEM: system, PROVIDER_NAME: target.provider.name}


def failure(failed: Failure) -> Attributes:
    attributes: Attributes = {ERROR_TYPE: failed.kind, FAILURE_CLASS: failed.kind}
    if failed.status is not None:
        attributes[HTTP_STATUS] = failed.status
    return attributes


def answer(call: Call) -> Attributes:
    """What the answer used, cost and why it stopped, once the call has been accounted."""
    attributes = usage(call)
    if call.upstream_model is not None:
        attributes[RESPONSE_MODEL] = call.upstream_model
    if call.stop_reason is not None:
        reason = call.stop_reason
        if call.client_format == "openai":
            reason = openai_finish_reason(reason)
        attributes[FINISH_REASONS] = (reason,)
    cost = call.cost
    if cost is not None and cost.total is not None:
        attributes[COST] = float(cost.total)
    return attributes


def usage(call: Call) -> Attributes:
    """The tokens the answer used (the served attempt's and the call's)."""
    attributes: Attributes = {}
    used = call.usage
    if used is not None:
        attributes[INPUT_TOKENS] = used.prompt_tokens
        attributes[OUTPUT_TOKENS] = used.output_tokens
        if used.cache_read_tokens:
            attributes[CACHE_READ_TOKENS] = used.cache_read_tokens
        if used.cache_write_tokens:
            attributes[CACHE_WRITE_TOKENS] = used.cache_write_tokens
        if used.estimated:
            attributes[USAGE_ESTIMATED] = True
    return attributes


def call_outcome(call: Call, status: int) -> Attributes:
    """How the call was served, as the client saw it."""
    attributes: Attributes = {HTTP_STATUS: status, ATTEMPTS: call.attempts}
    if call.variant is not None:
        attributes[VARIANT] = call.variant
    if call.config_version is not None:
        attributes[CONFIG_VERSION] = call.config_version
    if call.served_by is not None:
        attributes[SERVED_BY] = call.served_by
    if call.fallback_used:
        attributes[FALLBACK] = True
    if call.cache_hit is not None:
        attributes[CACHE_HIT] = call.cache_hit
    if call.truncated:
        attributes[TRUNCATED] = True
    return attributes


def error_type(call: Call, status: int) -> str | None:
    """`error.type` of a failed call: the error's type as the client saw it, else its
    HTTP status; None for a call that succeeded."""
    if call.error_type is not None:
        return call.error_type
    if status >= 400:
        return str(status)
    return None
