"""OpenTelemetry GenAI spans of calls, exported over OTLP HTTP/protobuf (`tracing:`).

One span per call, named `{operation} {model asked}` (kind SERVER), a child of the caller's
W3C `traceparent` (and `tracestate`) when it sent one; one child span per attempt at a
deployment (kind CLIENT, `{operation} {upstream model}`), hedged attempts side by side. The
attributes follow the GenAI semantic conventions (`gen_ai.*`, `error.type`; the names are
in observability/span_attributes.py), with what only the gateway knows as `tollhouse.*`.

Three places meet a call, each at one `is None` branch: the gateway opens the call's span
as the call enters the pipeline (`start_call`), dispatch opens and closes attempts
(`CallTrace.attempt_started`), and accounting closes the call once its reply has been
sent, a stream's last chunk or the client's disconnect included (`end_call`): usage, cost
and the stop reason are read there from the `Call`, in one place. The attempt whose
answer was served stays open until then when it is a stream (its upstream stream lasts
as long), and gets the usage it produced.

This module is imported only when tracing is on (gateway.py): off, no opentelemetry
module is loaded. Spans are handed to a batch processor, whose thread exports them: a
full queue drops spans, never waits.
"""

from __future__ import annotations

import asyncio
import re
import time

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tollhouse.call import Call
from tollhouse.observability import span_attributes as attrs
from tollhouse.observability.tracing_config import TracingConfig, export_headers
from tollhouse.stages.dispatch.attempt import Answer, Failure
from tollhouse.stages.route import Target

_PROPAGATOR = TraceContextTextMapPropagator()

# The answer's own id is the first `"id"` of a body or of a stream's first event, in both
# formats; looked for in its first bytes only.
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*"([^"\\]{1,128})"')
_ID_SEARCH_BYTES = 2048


class CallTracing:
    """The tracer of one gateway. `exporter`: where finished spans go instead of the OTLP
    endpoint (a test's in-memory exporter)."""

    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=config.endpoint,
                headers=export_headers(config),
                timeout=config.export_timeout_seconds,
            )
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
            resource=Resource.create({"service.name": config.service_name}),
            shutdown_on_exit=False,  # `aclose` flushes, on the gateway's shutdown
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=config.max_queue,
                max_export_batch_size=min(config.batch_size, config.max_queue),
                schedule_delay_millis=config.schedule_delay_seconds * 1000,
                export_timeout_millis=config.export_timeout_seconds * 1000,
            )
        )
        self.tracer = self.provider.get_tracer("tollhouse")

    def start_call(self, call: Call) -> CallTrace:
        """Open `call`'s span, started when its request arrived, and put it on the call."""
        trace = call.trace = CallTrace(self.tracer, call)
        return trace

    def end_call(self, call: Call, status: int) -> None:
        """Close `call`'s span (and an attempt still open) as answered with `status`; a call
        refused before the gateway opened one gets its span now, from its arrival."""
        trace = call.trace if call.trace is not None else self.start_call(call)
        trace.end(call, status)

    async def aclose(self) -> None:
        """Export what is queued (up to the export timeout) and stop, off the loop."""
        await asyncio.to_thread(self.provider.shutdown)


class CallTrace:
    """The open spans of one call."""

    __slots__ = ("_context", "_request", "_served", "_tracer", "recording", "span")

    def __init__(self, tracer: trace_api.Tracer, call: Call) -> None:
        parent: Context | None = None
        if "traceparent" in call.headers:
            parent = _PROPAGATOR.extract(call.headers)
        started = time.time_ns() - int((time.perf_counter() - call.started) * 1e9)
        operation = attrs.operation(call)
        self.span: Span = tracer.start_span(
            f"{operation} {attrs.requested_model(call)}" if call.model else operation,
            context=parent,
            kind=SpanKind.SERVER,
            start_time=started,
        )
        # A call sampled out has attempts sampled out too (their parent decides): none is
        # started, and nothing is gathered for it.
        self.recording = self.span.is_recording()
        self._tracer = tracer
        self._context: Context | None = None
        # Attributes are set once, at the end: each costs the SDK a lock and a check, and
        # given at the start they also go through the sampler.
        self._request: attrs.Attributes = {}
        if self.recording:
            self._request = attrs.call_request(call, operation)
            self._context = trace_api.set_span_in_context(self.span)
        # Attempts that got an answer, with when their answer was read (None: a stream,
        # read until the call ends); the call's end closes them.
        self._served: list[tuple[AttemptSpan, int | None]] = []

    def attempt_started(self, call: Call, target: Target) -> AttemptSpan | UnrecordedAttempt:
        if not self.recording:
            return UNRECORDED
        # An earlier answer the answer checks sent back is over: close it first.
        for earlier, ended_at in self._served:
            earlier.attributes[attrs.ATTEMPT_OUTCOME] = "checked_again"
            earlier.end(ended_at)
        self._served.clear()
        operation = attrs.operation(call)
        span = self._tracer.start_span(
            f"{operation} {target.upstream_model}", context=self._context, kind=SpanKind.CLIENT
        )
        return AttemptSpan(self, span, target, attrs.attempt_request(call, target, operation))

    def guardrail_started(self, name: str) -> GuardrailSpan | UnrecordedAttempt:
        """A span for one input guardrail's check (stages/shape/guardrails/runner.py)."""
        if not self.recording:
            return UNRECORDED
        span = self._tracer.start_span(
            f"guardrail {name}", context=self._context, kind=SpanKind.INTERNAL
        )
        return GuardrailSpan(span, name)

    def _answered(self, attempt: AttemptSpan, ended_at: int | None) -> None:
        self._served.append((attempt, ended_at))

    def end(self, call: Call, status: int) -> None:
        span = self.span
        if not self.recording:  # sampled out: nothing to say
            span.end()
            return
        served = self._served
        self._served = []
        found = self._request
        answer = attrs.answer(call)
        found.update(answer)
        for attempt, ended_at in served:
            if attempt.target.label == call.served_by:
                attempt.attributes.update(attrs.usage(call))
                found.update(attrs.provider(attempt.target))
                if attempt.response_id is not None:
                    found[attrs.RESPONSE_ID] = attempt.response_id
            attempt.end(ended_at)
        found.update(attrs.call_outcome(call, status))
        error_type = attrs.error_type(call, status)
        if error_type is not None:
            found[attrs.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR))
        span.set_attributes(found)
        span.end()


class AttemptSpan:
    """One attempt's span: closed with its outcome by `ended`, or by `cancelled`."""

    __slots__ = ("_trace", "attributes", "response_id", "span", "target")

    def __init__(
        self, trace: CallTrace, span: Span, target: Target, attributes: attrs.Attributes
    ) -> None:
        self._trace = trace
        self.span = span
        self.target = target
        self.attributes = attributes
        self.response_id: str | None = None

    def ended(self, outcome: Answer | Failure) -> None:
        if isinstance(outcome, Failure):
            self.attributes.update(attrs.failure(outcome))
            self.span.set_status(Status(StatusCode.ERROR, outcome.kind))
            self.end(None)
            return
        self.attributes[attrs.HTTP_STATUS] = outcome.response.status
        found = _RESPONSE_ID.search((outcome.body or outcome.first_chunk)[:_ID_SEARCH_BYTES])
        if found is not None:
            self.response_id = found.group(1).decode("utf-8", "replace")
            self.attributes[attrs.RESPONSE_ID] = self.response_id
        self._trace._answered(self, None if outcome.body is None else time.time_ns())

    def cancelled(self) -> None:
        """Stopped before its verdict: the client left, or a hedge's other attempt won."""
        self.attributes[attrs.ATTEMPT_OUTCOME] = "cancelled"
        self.end(None)

    def end(self, at: int | None) -> None:
        """End the span at `at` (ns since the epoch; None: now) with its attributes."""
        self.span.set_attributes(self.attributes)
        self.span.end(end_time=at)


class GuardrailSpan:
    """One input guardrail's span, closed with its result by `ended`."""

    __slots__ = ("name", "span")

    def __init__(self, span: Span, name: str) -> None:
        self.span = span
        self.name = name

    def ended(self, kind: str, action: str, result: str, detail: str) -> None:
        """`result`: pass, flagged, redacted, blocked or error; `detail` the rule found
        (never the text), or why the guardrail could not decide."""
        found: attrs.Attributes = {
            attrs.GUARDRAIL_NAME: self.name,
            attrs.GUARDRAIL_KIND: kind,
            attrs.GUARDRAIL_ACTION: action,
            attrs.GUARDRAIL_RESULT: result,
        }
        if result == "error":
            found[attrs.ERROR_TYPE] = "guardrail_error"
            self.span.set_status(Status(StatusCode.ERROR, detail[:256]))
        elif detail:
            found[attrs.GUARDRAIL_RULE] = detail[:256]
        self.span.set_attributes(found)
        self.span.end()


class UnrecordedAttempt:
    """The attempt (or guardrail) of a call sampled out: nothing to record."""

    __slots__ = ()

    def ended(self, *outcome: object) -> None:
        pass

    def cancelled(self) -> None:
        pass


UNRECORDED = UnrecordedAttempt()
