"""OpenTelemetry GenAI spans of calls, captured by the SDK's in-memory exporter and checked
field by field, through the official SDKs, streaming and not, retried, failed, continued
from the caller's `traceparent`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, hermetic_gateway

from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "Hello"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _simulator(*faults: dict[str, Any]) -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": "anthropic", "faults": list(faults)}}


CONFIG: dict[str, Any] = {
    **IN_PROCESS_CONFIG,
    "providers": {
        **IN_PROCESS_CONFIG["providers"],
        "sim-flaky": _simulator({"fault": "500", "first_n": 1}),
        "sim-broken": _simulator({"fault": "500"}),
        "sim-slow": {
            "type": "simulator",
            "simulator": {"format": "anthropic", "tokens_per_second": 50, "reply_tokens": 200},
        },
    },
    "models": {
        **IN_PROCESS_CONFIG["models"],
        "flaky": {"deployments": [{"provider": "sim-flaky", "model": "flaky-1"}]},
        "broken": {"deployments": [{"provider": "sim-broken", "model": "broken-1"}]},
        "slow": {"deployments": [{"provider": "sim-slow", "model": "slow-1"}]},
        "guarded": {
            "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
            "input_guardrails": ["length", "codenames"],
        },
    },
    "input_guardrails": {
        "length": {"kind": "max_length", "max_chars": 100000},
        "codenames": {"kind": "deny_list", "terms": ["bluebird"]},
    },
    "tracing": {"enabled": True, "schedule_delay_seconds": 0.05},
}


class Traced:
    def __init__(self, gateway: Gateway, exporter: InMemorySpanExporter, url: str) -> None:
        self.gateway = gateway
        self.exporter = exporter
        self.url = url

    def spans_of(
        self, request_id: str, timeout: float = 5.0
    ) -> tuple[ReadableSpan, list[ReadableSpan]]:
        """The call span with tollhouse.request_id `request_id` and its children, in order
        of start, once the call span has been exported."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.gateway.tracing is not None
            self.gateway.tracing.provider.force_flush()
            spans = self.exporter.get_finished_spans()
            calls = [
                s for s in spans if (s.attributes or {}).get("tollhouse.request_id") == request_id
            ]
            if calls:
                call = calls[0]
                children = [
                    s
                    for s in spans
                    if s.parent is not None and s.parent.span_id == call.context.span_id
                ]
                return call, sorted(children, key=lambda s: s.start_time or 0)
            assert time.monotonic() < deadline, f"no span for {request_id}"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def traced() -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    gateway = hermetic_gateway(CONFIG, span_exporter=exporter)
    server = BackgroundServer(create_app(gateway)).start()
    yield Traced(gateway, exporter, server.url)
    server.stop()


def _anthropic(traced: Traced) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=traced.url, api_key=GATEWAY_KEY, max_retries=0)


def _openai(traced: Traced) -> openai.OpenAI:
    return openai.OpenAI(base_url=traced.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


def test_an_anthropic_call_is_a_genai_span_with_one_attempt_child(traced: Traced) -> None:
    raw = _anthropic(traced).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=123,
        messages=HI,  # type: ignore[arg-type]
    )
    message = raw.parse()
    call, children = traced.spans_of(raw.headers["x-tollhouse-request-id"])

    assert call.name == "chat claude-haiku-4-5"
    assert call.kind == SpanKind.SERVER
    assert call.status.status_code == StatusCode.UNSET
    a = dict(call.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "claude-haiku-4-5"
    assert a["gen_ai.request.max_tokens"] == 123
    assert a["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
    assert a["gen_ai.response.id"] == message.id
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.system"] == "anthropic"
    assert a["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["http.response.status_code"] == 200
    assert a["tollhouse.client_format"] == "anthropic"
    assert a["tollhouse.stream"] is False
    assert a["tollhouse.attempts"] == 1
    assert a["tollhouse.deployment"] == "sim-anthropic/claude-haiku-4-5-20251001"
    assert a["tollhouse.provider"] == "sim-anthropic"
    assert isinstance(a["tollhouse.cost_usd"], float)
    assert a["tollhouse.cost_usd"] > 0
    assert "error.type" not in a
    assert call.resource.attributes["service.name"] == "tollhouse"

    [attempt] = children
    assert attempt.name == "chat claude-haiku-4-5-20251001"
    assert attempt.kind == SpanKind.CLIENT
    assert attempt.context.trace_id == call.context.trace_id
    b = dict(attempt.attributes or {})
    assert b["gen_ai.operation.name"] == "chat"
    assert b["gen_ai.request.model"] == "claude-haiku-4-5-20251001"
    assert b["gen_ai.provider.name"] == "anthropic"
    assert b["http.response.status_code"] == 200
    assert b["gen_ai.response.id"] == message.id
    assert b["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert call.start_time is not None
    assert attempt.start_time is not None
    assert call.end_time is not None
    assert attempt.end_time is not None
    assert call.start_time <= attempt.start_time <= attempt.end_time <= call.end_time


def test_an_openai_stream_span_ends_with_the_stream_and_holds_its_usage(traced: Traced) -> None:
    with _openai(traced).chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=HI,  # type: ignore[arg-type]
        max_completion_tokens=77,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-tollhouse-request-id"]
        chunks = list(response.parse())
        finished_reading = time.time_ns()
    usage = chunks[-1].usage
    assert usage is not None
    call, [attempt] = traced.spans_of(request_id)

    a = dict(call.attributes or {})
    assert call.name == "chat gpt-4o-mini"
    assert a["gen_ai.request.max_tokens"] == 77
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.id"] == chunks[0].id
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["tollhouse.stream"] is True
    # the spans end when the stream did, not when its headers were sent
    assert call.end_time is not None
    assert attempt.end_time is not None
    assert call.end_time >= attempt.end_time
    assert attempt.end_time <= finished_reading + 1_000_000_000
    assert dict(attempt.attributes or {})["gen_ai.usage.output_tokens"] == usage.completion_tokens


def test_an_anthropic_stream_across_formats_reports_the_openai_deployment(traced: Traced) -> None:
    with _anthropic(traced).messages.stream(
        model="gpt-4o-mini",
        max_tokens=50,
        messages=HI,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["x-tollhouse-request-id"]
    call, [attempt] = traced.spans_of(request_id)
    a = dict(call.attributes or {})
    assert a["gen_ai.provider.name"] == "openai"
    assert a["tollhouse.client_format"] == "anthropic"
    assert a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert a["gen_ai.response.finish_reasons"] == (final.stop_reason,)
    assert dict(attempt.attributes or {})["gen_ai.provider.name"] == "openai"


def test_a_retried_call_has_a_failed_attempt_span_then_a_served_one(traced: Traced) -> None:
    raw = _anthropic(traced).messages.with_raw_response.create(
        model="flaky",
        max_tokens=50,
        messages=HI,  # type: ignore[arg-type]
    )
    assert raw.headers["x-tollhouse-attempts"] == "2"
    call, [failed, served] = traced.spans_of(raw.headers["x-tollhouse-request-id"])

    assert call.status.status_code == StatusCode.UNSET
    assert dict(call.attributes or {})["tollhouse.attempts"] == 2
    f = dict(failed.attributes or {})
    assert failed.name == "chat flaky-1"
    assert failed.status.status_code == StatusCode.ERROR
    assert f["error.type"] == "server_error"
    assert f["http.response.status_code"] == 500
    assert f["tollhouse.attempts"] == 1
    s = dict(served.attributes or {})
    assert served.status.status_code == StatusCode.UNSET
    assert "error.type" not in s
    assert s["tollhouse.attempts"] == 2
    assert s["gen_ai.usage.output_tokens"] == raw.parse().usage.output_tokens
    assert failed.end_time is not None
    assert served.start_time is not None
    assert failed.end_time <= served.start_time


def test_a_failed_call_span_has_error_status_and_type(traced: Traced) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        _anthropic(traced).messages.create(model="broken", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    response = caught.value.response
    call, attempts = traced.spans_of(response.headers["x-tollhouse-request-id"])

    a = dict(call.attributes or {})
    assert call.status.status_code == StatusCode.ERROR
    assert a["error.type"] == caught.value.body["error"]["type"]  # type: ignore[index]
    assert a["http.response.status_code"] == response.status_code >= 500
    assert len(attempts) == 2
    assert all(s.status.status_code == StatusCode.ERROR for s in attempts)
    assert all(dict(s.attributes or {})["error.type"] == "server_error" for s in attempts)


def test_a_bad_request_refused_before_dispatch_is_a_span_with_no_attempt(traced: Traced) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _openai(traced).chat.completions.create(model="no-such-model", messages=HI)  # type: ignore[arg-type]
    call, attempts = traced.spans_of(caught.value.response.headers["x-tollhouse-request-id"])
    a = dict(call.attributes or {})
    assert call.status.status_code == StatusCode.ERROR
    assert a["error.type"] == caught.value.body["type"]  # type: ignore[index]
    assert a["http.response.status_code"] == 404
    assert a["gen_ai.request.model"] == "no-such-model"
    assert attempts == []


def test_an_unreadable_body_still_gets_a_span(traced: Traced) -> None:
    response = httpx.post(
        traced.url + "/v1/messages",
        content=b"{not json",
        headers={"content-type": "application/json", "x-api-key": GATEWAY_KEY},
    )
    assert response.status_code == 400
    call, _ = traced.spans_of(response.headers["x-tollhouse-request-id"])
    assert call.name == "chat"
    assert call.status.status_code == StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "invalid_request_error"


def test_the_callers_traceparent_is_continued(traced: Traced) -> None:
    raw = _anthropic(traced).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=20,
        messages=HI,  # type: ignore[arg-type]
        extra_headers={
            "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
            "tracestate": "vendor=abc",
        },
    )
    call, [attempt] = traced.spans_of(raw.headers["x-tollhouse-request-id"])
    assert call.context.trace_id == int(TRACE_ID, 16)
    assert call.parent is not None
    assert call.parent.span_id == int(PARENT_ID, 16)
    assert call.parent.is_remote
    assert call.context.trace_state.get("vendor") == "abc"
    assert attempt.context.trace_id == int(TRACE_ID, 16)


def test_a_caller_that_did_not_sample_gets_no_span(traced: Traced) -> None:
    unsampled = "5bf92f3577b34da6a3ce929d0e0e4737"
    _anthropic(traced).messages.create(
        model="claude-haiku-4-5",
        max_tokens=20,
        messages=HI,  # type: ignore[arg-type]
        extra_headers={"traceparent": f"00-{unsampled}-{PARENT_ID}-00"},
    )
    marker = _anthropic(traced).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=20,
        messages=HI,  # type: ignore[arg-type]
    )
    traced.spans_of(marker.headers["x-tollhouse-request-id"])  # exported after the other
    assert not [
        s for s in traced.exporter.get_finished_spans() if s.context.trace_id == int(unsampled, 16)
    ]


def test_a_client_that_leaves_mid_stream_ends_the_span_as_disconnected(traced: Traced) -> None:
    body = {"model": "slow", "max_tokens": 2000, "stream": True, "messages": HI}
    headers = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", traced.url + "/v1/messages", json=body, headers=headers) as response:
        request_id = response.headers["x-tollhouse-request-id"]
        next(response.iter_raw())
    call, [attempt] = traced.spans_of(request_id)
    a = dict(call.attributes or {})
    assert a["http.response.status_code"] == 499
    assert a["error.type"] == "client_disconnected"
    assert call.status.status_code == StatusCode.ERROR
    assert attempt.end_time is not None
    assert call.end_time is not None
    assert attempt.end_time <= call.end_time


def test_what_a_client_writes_reaches_a_span_bounded(traced: Traced) -> None:
    """A model name of 10,000 characters is cut; a max_tokens past int64 (which OTLP could
    not carry, failing its whole batch) is left out."""
    response = httpx.post(
        traced.url + "/v1/chat/completions",
        json={"model": "m" * 10_000, "max_tokens": 10**30, "messages": HI},
        headers={"authorization": f"Bearer {GATEWAY_KEY}"},
    )
    assert response.status_code in (400, 404)
    call, _ = traced.spans_of(response.headers["x-tollhouse-request-id"])
    assert call.name == "chat " + "m" * 256
    a = dict(call.attributes or {})
    assert a["gen_ai.request.model"] == "m" * 256
    assert "gen_ai.request.max_tokens" not in a


def test_each_input_guardrail_is_a_child_span_with_its_result(traced: Traced) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        _anthropic(traced).messages.create(
            model="guarded",
            max_tokens=20,
            messages=[{"role": "user", "content": "Tell me about bluebird"}],
        )
    call, [length, codenames] = traced.spans_of(
        caught.value.response.headers["x-tollhouse-request-id"]
    )
    assert call.status.status_code == StatusCode.ERROR
    assert length.name == "guardrail length"
    assert length.kind == SpanKind.INTERNAL
    assert dict(length.attributes or {}) == {
        "tollhouse.guardrail.name": "length",
        "tollhouse.guardrail.kind": "max_length",
        "tollhouse.guardrail.action": "block",
        "tollhouse.guardrail.result": "pass",
    }
    c = dict(codenames.attributes or {})
    assert codenames.name == "guardrail codenames"
    assert c["tollhouse.guardrail.result"] == "blocked"
    assert c["tollhouse.guardrail.rule"] == "denied term"
    assert "bluebird" not in str(c)
