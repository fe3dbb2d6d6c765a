"""The simulator: a fake LLM provider speaking the Anthropic Messages, OpenAI Chat
Completions and OpenAI Responses wire formats, in process (`Simulator.handle`) or over HTTP
(`simulator.asgi`).

One call goes: route by path → fault (request header `x-simulator-fault`, else config rules)
→ validation as the real API does it → rate limits → prompt cache → the answer, decided at
once and deterministic (`simulator.answer`) → the format's JSON body, or its event stream
made event by event as it is released at the configured pace. Every response carries a
request id (`request-id` / `x-request-id`) and the format's rate-limit headers; every error
body is the format's own.

Request headers read: `x-simulator-fault` (grammar in `simulator.faults`),
`x-simulator-ttft-ms` (time to first token for this call), `x-simulator-usage` (a JSON
object of usage fields to report, merged over the config's `usage`: `server_tool_use`,
`iterations`, `service_tier`, `inference_geo`, `speed`, OpenAI's token details...),
`anthropic-version` (picks the Anthropic shape for `GET /v1/models`).

Batches (Anthropic `/v1/messages/batches`, OpenAI `/v1/batches` and `/v1/files`) are
`simulator.batches`: each of their requests is answered by the endpoints here.

`POST /v1/moderations` answers OpenAI's moderation shape with scripted categories
(`simulator.moderations`: `[moderation:violence]` in an input flags it), at the configured
time to first token, with config fault rules applied as to generation calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from tollhouse.errors import render_error_body
from tollhouse.providers.base import UpstreamConnectionError
from tollhouse.simulator import anthropic_response, openai_response, responses_api
from tollhouse.simulator.answer import plan_answer
from tollhouse.simulator.anthropic_request import check_count_tokens, parse_messages
from tollhouse.simulator.batches import SimulatedBatches
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.embeddings import embeddings_answer
from tollhouse.simulator.faults import Fault, FaultSchedule
from tollhouse.simulator.ids import anthropic_message_id, openai_completion_id, request_id
from tollhouse.simulator.model_list import anthropic_models, openai_models
from tollhouse.simulator.moderations import moderation_answer
from tollhouse.simulator.openai_request import parse_chat
from tollhouse.simulator.prompt_cache import PromptCache
from tollhouse.simulator.rate_limits import RateLimits, Refusal
from tollhouse.simulator.request_checks import InvalidRequest, decode_body
from tollhouse.simulator.response import Pace, SimResponse, StreamBreak, StreamEvent
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.types import WireFormat
from tollhouse.wire.body_bounds import let_others_run

FAULT_HEADER = "x-simulator-fault"
TTFT_HEADER = "x-simulator-ttft-ms"
USAGE_HEADER = "x-simulator-usage"
_USAGE_HEADER_LIMIT = 8192
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"

_FAULT_MESSAGES = {
    429: "Number of requests has exceeded your rate limit (simulated fault).",
    500: "Internal server error (simulated fault).",
    503: "Service unavailable (simulated fault).",
    529: "Overloaded",
}
_OVERLOADED = "Overloaded"


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    fmt: WireFormat | None  # None: chosen by the request's headers
    generation: bool = False
    faults: bool = False  # config fault rules apply (they always do to generation calls)


_ROUTES = {
    "/v1/messages": _Route("POST", "anthropic", generation=True),
    "/v1/messages/count_tokens": _Route("POST", "anthropic"),
    "/v1/chat/completions": _Route("POST", "openai", generation=True),
    "/v1/responses": _Route("POST", "openai", generation=True),
    "/v1/embeddings": _Route("POST", "openai", generation=True),
    "/v1/moderations": _Route("POST", "openai", faults=True),
    "/v1/models": _Route("GET", None),
}


@dataclass(slots=True)
class _Call:
    """One call as the handlers see it."""

    fmt: WireFormat
    request_id: str
    doc: dict[str, Any]
    pace: Pace
    fault: Fault | None
    body_size: int
    usage: Mapping[str, Any]  # usage fields to report (config `usage`, usage header)


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        c = self.config
        self._faults = FaultSchedule(c.faults, c.seed)
        self.generation_calls = 0
        self.moderation_calls = 0
        self._cache = PromptCache(c.cache_ttl_seconds)
        self._limits = RateLimits(
            c.rate_limit_requests_per_minute,
            c.rate_limit_input_tokens_per_minute,
            c.rate_limit_output_tokens_per_minute,
        )
        self._pace = Pace(c.ttft_ms / 1000.0, c.tokens_per_second)
        self._handlers: dict[str, Callable[[_Call], Awaitable[SimResponse]]] = {
            "/v1/messages": self._messages,
            "/v1/messages/count_tokens": self._count_tokens,
            "/v1/chat/completions": self._chat,
            "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings,
            "/v1/moderations": self._moderations,
            "/v1/models": self._models,
        }
        self._batches = SimulatedBatches(
            self.handle,
            lambda fmt, status, message: self._error(fmt, request_id(), status, message),
            lambda fmt, doc: SimResponse(
                200, self._headers(fmt, request_id(), JSON), orjson.dumps(doc)
            ),
            c.batch_request_ms,
        )

    @property
    def faults_fired(self) -> dict[str, int]:
        """How often each configured fault rule fired, by fault spec."""
        return self._faults.fired

    async def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> SimResponse:
        """Answer one HTTP request (`path` from the root, e.g. `/v1/messages`; header names
        lower-case). Raises `UpstreamConnectionError` for the `reset` fault; never returns for
        `hang`."""
        path, _, query = path.partition("?")
        if SimulatedBatches.serves(path):
            return await self._batches.handle(method, path, query, headers, body)
        route = _ROUTES.get(path)
        fmt: WireFormat = (route and route.fmt) or (
            "anthropic" if "anthropic-version" in headers else "openai"
        )
        rid = request_id()
        if route is None:
            return self._error(fmt, rid, 404, f"Not found: {method} {path}", "not_found_error")
        if method != route.method:
            return self._error(fmt, rid, 405, f"Method {method} not allowed for {path}")
        doc: dict[str, Any] = {}
        invalid: InvalidRequest | None = None
        if method == "POST":
            try:
                doc = decode_body(body)
            except InvalidRequest as exc:
                invalid = exc
            await let_others_run(len(body))
        if route.generation:
            self.generation_calls += 1
        try:
            model = doc.get("model")
            fault = self._faults.pick(
                headers.get(FAULT_HEADER),
                model if isinstance(model, str) else None,
                route.generation or route.faults,
            )
            pace = self._request_pace(headers)
            usage = self._usage_fields(headers)
        except ValueError as exc:
            return self._error(fmt, rid, 400, str(exc))
        if fault is not None and not fault.is_mid_stream:
            early = await self._early_fault(fault, fmt, rid)
            if early is not None:
                return early
        if invalid is not None:
            return self._invalid(fmt, rid, invalid)
        try:
            call = _Call(fmt, rid, doc, pace, fault, len(body), usage)
            return await self._handlers[path](call)
        except InvalidRequest as exc:
            return self._invalid(fmt, rid, exc)

    def _usage_fields(self, headers: Mapping[str, str]) -> Mapping[str, Any]:
        text = headers.get(USAGE_HEADER)
        if text is None:
            return self.config.usage
        if len(text) > _USAGE_HEADER_LIMIT:
            raise ValueError(f"{USAGE_HEADER}: over {_USAGE_HEADER_LIMIT} bytes")
        try:
            fields = orjson.loads(text)
        except orjson.JSONDecodeError:
            fields = None
        if not isinstance(fields, dict):
            raise ValueError(f"{USAGE_HEADER}: expected a JSON object of usage fields")
        return {**self.config.usage, **fields}

    def _request_pace(self, headers: Mapping[str, str]) -> Pace:
        ttft = headers.get(TTFT_HEADER)
        if ttft is None:
            return self._pace
        try:
            ms = float(ttft)
        except ValueError:
            ms = -1.0
        if not 0 <= ms < float("inf"):
            raise ValueError(f"{TTFT_HEADER}: expected milliseconds >= 0, got {ttft!r}")
        return Pace(ms / 1000.0, self._pace.tokens_per_second)

    async def _early_fault(self, fault: Fault, fmt: WireFormat, rid: str) -> SimResponse | None:
        """Faults that strike before any answer; None when the call then proceeds."""
        if fault.kind == "slow-first-byte":
            await asyncio.sleep(fault.delay_ms / 1000.0)
            return None
        if fault.kind == "hang":
            await _hang()
        if fault.kind == "reset":
            raise UpstreamConnectionError("simulated connection reset before any response")
        message = _FAULT_MESSAGES.get(fault.status, f"Simulated HTTP {fault.status} fault.")
        response = self._error(fmt, rid, fault.status, message)
        if fault.retry_after_s is not None:
            headers = dict(response.headers)
            headers["retry-after"] = f"{fault.retry_after_s:g}"
            headers["retry-after-ms"] = str(round(fault.retry_after_s * 1000))
            response.headers = headers
        return response

    # --- endpoints -----------------------------------------------------------------------

    async def _messages(self, call: _Call) -> SimResponse:
        request = parse_messages(call.doc, self.config.seed)
        input_tokens = request_input_tokens(call.doc)
        refusal = self._limits.admit(input_tokens)
        if refusal is not None:
            return self._rate_limited(call, refusal, request.model)
        await let_others_run(call.body_size)
        cache = self._cache.anthropic_usage(request.model, call.doc)
        await let_others_run(call.body_size)
        answer = plan_answer(request.ask, self.config)
        self._limits.charge_output(answer.output_tokens)
        uncached = input_tokens - cache.read - cache.write_5m - cache.write_1h
        usage = anthropic_response.AnthropicUsage(
            uncached, cache.read, cache.write_5m, cache.write_1h, call.usage
        )
        message_id = anthropic_message_id()
        if request.stream:
            events = anthropic_response.stream_events(message_id, request.model, answer, usage)
            error = anthropic_response.error_frame(_OVERLOADED, "overloaded_error")
            return self._stream(call, events, error)
        if call.fault is not None and call.fault.kind == "mid-stream-error":
            return self._error(call.fmt, call.request_id, 529, _OVERLOADED)
        body = orjson.dumps(
            anthropic_response.message_doc(message_id, request.model, answer, usage)
        )
        return await self._json(call, body, answer.output_tokens)

    async def _chat(self, call: _Call) -> SimResponse:
        request = parse_chat(call.doc, self.config.seed)
        prompt_tokens = request_input_tokens(call.doc)
        refusal = self._limits.admit(prompt_tokens)
        if refusal is not None:
            return self._rate_limited(call, refusal, request.model)
        await let_others_run(call.body_size)
        cached = self._cache.openai_cached_tokens(request.model, call.doc)
        await let_others_run(call.body_size)
        answers = [plan_answer(request.ask, self.config, i) for i in range(request.n)]
        output_tokens = sum(a.output_tokens for a in answers)
        self._limits.charge_output(output_tokens)
        extra = dict(call.usage)
        tier = extra.pop("service_tier", "default")
        usage = openai_response.OpenAIUsage(prompt_tokens, cached, output_tokens, extra)
        completion = openai_response.Completion(
            openai_completion_id(), int(time.time()), request.model, str(tier)
        )
        if request.stream:
            events = openai_response.stream_events(
                completion, answers, usage, request.include_usage
            )
            error = openai_response.error_frame(
                "The server had an error while processing your request."
            )
            return self._stream(call, events, error)
        if call.fault is not None and call.fault.kind == "mid-stream-error":
            message = "The server had an error while processing your request."
            return self._error(call.fmt, call.request_id, 500, message)
        body = orjson.dumps(openai_response.completion_doc(completion, answers, usage))
        return await self._json(call, body, output_tokens)

    async def _responses(self, call: _Call) -> SimResponse:
        chat = responses_api.chat_request(call.doc)
        request = parse_chat(chat, self.config.seed)
        prompt_tokens = request_input_tokens(chat)
        refusal = self._limits.admit(prompt_tokens)
        if refusal is not None:
            return self._rate_limited(call, refusal, request.model)
        await let_others_run(call.body_size)
        cached = self._cache.openai_cached_tokens(request.model, chat)
        answer = plan_answer(request.ask, self.config)
        output_tokens = answer.output_tokens + responses_api.reasoning_tokens(call.doc)
        self._limits.charge_output(output_tokens)
        usage = openai_response.OpenAIUsage(prompt_tokens, cached, output_tokens)
        completion = openai_response.Completion(
            openai_completion_id(), int(time.time()), request.model
        )
        response = responses_api.response_doc(call.doc, completion, answer, usage)
        message = "The server had an error while processing your request."
        if call.doc.get("stream") is True:
            error = responses_api.stream_error_frame(message)
            return self._stream(call, responses_api.stream_events(response), error)
        if call.fault is not None and call.fault.kind == "mid-stream-error":
            return self._error(call.fmt, call.request_id, 500, message)
        return await self._json(call, orjson.dumps(response), output_tokens)

    async def _count_tokens(self, call: _Call) -> SimResponse:
        check_count_tokens(call.doc)
        body = orjson.dumps({"input_tokens": request_input_tokens(call.doc)})
        return SimResponse(200, self._headers(call.fmt, call.request_id, JSON), body)

    async def _embeddings(self, call: _Call) -> SimResponse:
        answer, input_tokens = embeddings_answer(call.doc)
        refusal = self._limits.admit(input_tokens)
        if refusal is not None:
            return self._rate_limited(call, refusal, str(call.doc.get("model")))
        return await self._json(call, orjson.dumps(answer), 0)

    async def _moderations(self, call: _Call) -> SimResponse:
        self.moderation_calls += 1
        return await self._json(call, orjson.dumps(moderation_answer(call.doc)), 0)

    async def _models(self, call: _Call) -> SimResponse:
        doc = anthropic_models() if call.fmt == "anthropic" else openai_models()
        return SimResponse(200, self._headers(call.fmt, call.request_id, JSON), orjson.dumps(doc))

    # --- responses -----------------------------------------------------------------------

    async def _json(self, call: _Call, body: bytes, output_tokens: int) -> SimResponse:
        # Without streaming the status line only comes once the whole answer is generated.
        latency = call.pace.ttft_s + call.pace.generation_s(output_tokens)
        if latency > 0:
            await asyncio.sleep(latency)
        broken = call.fault is not None and call.fault.kind == "mid-stream-reset"
        headers = self._headers(call.fmt, call.request_id, JSON)
        return SimResponse(200, headers, body, body_reset=broken)

    def _stream(
        self, call: _Call, events: Iterable[StreamEvent], error_frame: bytes
    ) -> SimResponse:
        brk = None
        if call.fault is not None and call.fault.is_mid_stream:
            frame = error_frame if call.fault.kind == "mid-stream-error" else None
            brk = StreamBreak(call.fault.after_events, frame)
        headers = self._headers(call.fmt, call.request_id, EVENT_STREAM)
        headers["cache-control"] = "no-cache"
        return SimResponse(200, headers, events=events, pace=call.pace, stream_break=brk)

    def _headers(self, fmt: WireFormat, rid: str, content_type: str) -> dict[str, str]:
        if fmt == "anthropic":
            headers = {"content-type": content_type, "request-id": rid}
            headers.update(self._limits.anthropic_headers())
        else:
            headers = {
                "content-type": content_type,
                "x-request-id": rid,
                "openai-version": "2020-10-01",
            }
            headers.update(self._limits.openai_headers())
        return headers

    def _error(
        self,
        fmt: WireFormat,
        rid: str,
        status: int,
        message: str,
        anthropic_type: str | None = None,
    ) -> SimResponse:
        body = render_error_body(
            fmt, message, anthropic_type=anthropic_type, status=status, request_id=rid
        )
        return SimResponse(status, self._headers(fmt, rid, JSON), body)

    def _invalid(self, fmt: WireFormat, rid: str, exc: InvalidRequest) -> SimResponse:
        body = render_error_body(
            fmt,
            exc.message,
            anthropic_type="invalid_request_error",
            openai_type="invalid_request_error",
            param=exc.param,
            code=exc.code,
            request_id=rid,
        )
        return SimResponse(400, self._headers(fmt, rid, JSON), body)

    def _rate_limited(self, call: _Call, refusal: Refusal, model: str) -> SimResponse:
        if call.fmt == "anthropic":
            message = (
                f"This request would exceed the rate limit for your organization of "
                f"{refusal.limit} {refusal.dimension} per minute. Please try again in "
                f"{refusal.retry_after_s}s."
            )
            body = render_error_body("anthropic", message, status=429, request_id=call.request_id)
        else:
            unit = "RPM" if refusal.dimension == "requests" else "TPM"
            message = (
                f"Rate limit reached for {model} on {refusal.dimension} per min ({unit}): "
                f"Limit {refusal.limit}. Please try again in {refusal.retry_after_s}s."
            )
            kind = "requests" if refusal.dimension == "requests" else "tokens"
            body = render_error_body(
                "openai", message, openai_type=kind, code="rate_limit_exceeded"
            )
        headers = self._headers(call.fmt, call.request_id, JSON)
        headers["retry-after"] = str(refusal.retry_after_s)
        headers["retry-after-ms"] = str(refusal.retry_after_s * 1000)
        return SimResponse(429, headers, body)


async def _hang() -> NoReturn:
    await asyncio.Event().wait()  # nothing ever sets it: only cancellation ends the wait
    raise AssertionError("an event nobody sets was set")
