"""Spans leave over OTLP HTTP/protobuf, to a receiver the test starts; tracing's config is
checked at load; and with tracing off the gateway never imports opentelemetry."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.call import Call
from tollhouse.config import ConfigError, parse_config
from tollhouse.gateway_parts import build_parts
from tollhouse.observability.tracing import CallTracing
from tollhouse.observability.tracing_config import TracingConfig

HI = [{"role": "user", "content": "Hello"}]


class Receiver:
    """An OTLP/HTTP trace receiver on a loopback port: decodes each export request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(({k.lower(): v for k, v in self.headers.items()}, request))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.close()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind)


def test_spans_reach_an_otlp_http_receiver_with_the_configured_headers(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TH_TEST_OTLP_TOKEN", "Bearer otlp-secret")
    config = {
        **IN_PROCESS_CONFIG,
        "tracing": {
            "enabled": True,
            "endpoint": receiver.url,
            "headers": {"authorization": "env:TH_TEST_OTLP_TOKEN"},
            "service_name": "gateway-under-test",
            "schedule_delay_seconds": 0.05,
        },
    }
    server = serve_gateway(config)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
        completion = raw.parse()
        request_id = raw.headers["x-tollhouse-request-id"]
        deadline = time.monotonic() + 10
        spans: dict[str, Any] = {}
        while time.monotonic() < deadline and len(spans) < 2:
            time.sleep(0.05)
            for headers, request in list(receiver.requests):
                assert headers["authorization"] == "Bearer otlp-secret"
                assert headers["content-type"] == "application/x-protobuf"
                for resource_spans in request.resource_spans:
                    resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    assert resource["service.name"] == "gateway-under-test"
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans[span.span_id.hex()] = span
    finally:
        server.stop()

    [call] = [s for s in spans.values() if s.kind == s.SPAN_KIND_SERVER]
    [attempt] = [s for s in spans.values() if s.kind == s.SPAN_KIND_CLIENT]
    assert call.name == "chat gpt-4o-mini"
    attributes = {a.key: _value(a.value) for a in call.attributes}
    assert attributes["tollhouse.request_id"] == request_id
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.id"] == completion.id
    assert completion.usage is not None
    assert attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attempt.name == "chat gpt-4o-mini"
    assert attempt.trace_id == call.trace_id
    assert attempt.parent_span_id == call.span_id
    assert {a.key: _value(a.value) for a in attempt.attributes}["gen_ai.provider.name"] == "openai"


def test_a_header_written_inline_is_refused_naming_the_key() -> None:
    config = parse_config({"tracing": {"enabled": True, "headers": {"authorization": "Bearer x"}}})
    with pytest.raises(
        ConfigError, match=r"\$\.tracing\.headers\.authorization: expected a secret"
    ):
        build_parts(config)


def test_an_endpoint_that_is_no_url_is_refused_naming_the_key() -> None:
    config = parse_config({"tracing": {"enabled": True, "endpoint": "collector:4318"}})
    with pytest.raises(ConfigError, match=r"\$\.tracing\.endpoint"):
        build_parts(config)


def test_tracing_without_the_otel_extra_is_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    config = parse_config({"tracing": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"\$\.tracing\.enabled: .*tollhouse\[otel\]"):
        build_parts(config)


def test_a_sample_ratio_of_zero_records_no_span_but_a_callers_sampled_trace() -> None:
    exporter = InMemorySpanExporter()
    tracing = CallTracing(TracingConfig(enabled=True, sample_ratio=0.0), exporter)
    sampled = f"00-{'ab' * 16}-{'cd' * 8}-01"
    for headers in ({}, {"traceparent": sampled}):
        call = Call("anthropic", "messages", {"model": "m"}, b"", headers)
        tracing.start_call(call)
        tracing.end_call(call, 200)
    tracing.provider.shutdown()
    [span] = exporter.get_finished_spans()
    assert span.context.trace_id == int("ab" * 16, 16)


def test_a_sample_ratio_above_one_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\$\.tracing\.sample_ratio"):
        parse_config({"tracing": {"sample_ratio": 1.5}})


def test_with_tracing_off_no_opentelemetry_module_is_imported() -> None:
    """A gateway on the default config serves calls, both SDK formats, streaming and not,
    and opentelemetry is never imported (in a fresh interpreter: the test's own has it)."""
    script = """
import json, sys, urllib.request
from tests.support import IN_PROCESS_CONFIG, serve_gateway
server = serve_gateway(IN_PROCESS_CONFIG)
for path, body in [
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/chat/completions", {"model": "claude-haiku-4-5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
]:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status
        response.read()
server.stop()
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
