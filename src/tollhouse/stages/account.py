"""Account: what a call used and cost, and everything that counts it (DESIGN.md's last stage).

A call is accounted for in three moments, each with its function here:

- dispatch learns what the answer used: `note_answer` (a whole answer's stop reason and
  usage) or `note_stream` (a relayed stream's, estimated when it broke before saying);
- the HTTP layer sends the reply: `reply_leaving` once before the first byte (the
  admission's headroom headers, the start of the answer text the ledger keeps), then
  `chunk_sent` per streamed chunk (time to first byte, the stream's first bytes);
- the reply has been sent (a stream: its last chunk): `Accounting.finish` prices the usage,
  settles the budget reservation, writes the ledger record, feeds the alerts, the
  guardrails of a route's variants (rollout/monitor.py), the prompt-cache hit ratios
  (observability/prompt_cache_watch.py) and metrics, and closes the call's span when
  tracing is on (observability/tracing.py).

A call is accounted as the client saw it: a stream that ends in an error event (the
upstream's, relayed or translated, or the gateway's own when the upstream broke) is a
failed call, with that error's type and the status it stands for, although its HTTP status
was 200.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tollhouse.accounting import NO_COST, CallCost, Usage, cost_of
from tollhouse.accounting.call_ledger import CallLedger
from tollhouse.accounting.call_text import system_prompt_hash
from tollhouse.accounting.usage import Iteration, with_iterations
from tollhouse.call import Call
from tollhouse.catalog.models import ModelCatalog
from tollhouse.errors import ANTHROPIC_TYPE_BY_STATUS, OPENAI_TYPE_BY_STATUS
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.metrics import CallObservation, GatewayMetrics
from tollhouse.observability.prompt_cache_watch import PromptCacheWatch
from tollhouse.rollout.monitor import GuardrailMonitor
from tollhouse.stages.admit import Admitter
from tollhouse.stages.check.truncation import TRUNCATED
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.types import Reply, WireFormat
from tollhouse.wire.formats import FORMATS
from tollhouse.wire.sse import SSEParser

if TYPE_CHECKING:  # imported only when tracing is on (gateway.py)
    from tollhouse.observability.tracing import CallTracing

# Bytes of a streamed answer kept for the ledger's answer text (when it keeps text): the
# events' framing takes several times the text itself.
ANSWER_CAPTURE_LIMIT = 1 << 20

# How much of a stream's end is read for the event it ended with: an error event is far
# smaller, and what precedes it in the tail is only skipped.
_TAIL_BYTES = 4096

log = logging.getLogger("tollhouse.account")

# Unpriced lines already logged: each is said once per process, the count is in /metrics.
_WARNED: set[str] = set()
_WARN_LIMIT = 256


def _warn_unpriced(reasons: tuple[str, ...], call: Call) -> None:
    for reason in reasons:
        if reason not in _WARNED and len(_WARNED) < _WARN_LIMIT:
            _WARNED.add(reason)
            log.warning(
                "call %s: %s has no price in the catalog; the call's cost is recorded as "
                "unknown (tollhouse_unpriced_lines counts the next ones)",
                call.request_id,
                reason,
            )


def openai_search_calls(usage: Usage, body: dict[str, Any]) -> Usage:
    """`usage` with the web search an OpenAI search model made: a Chat Completions request
    with `web_search_options` searches once before it answers (OpenAI's web search guide),
    and its usage object doesn't count it. A count the usage does report stands."""
    if "web_search_options" not in body or usage.tool_count("web_search_requests"):
        return usage
    tools = dict(usage.server_tool_use)
    tools["web_search_requests"] = 1
    return replace(usage, server_tool_use=tuple(sorted(tools.items())))


def priced_usage(catalog: ModelCatalog, call: Call, usage: Usage) -> tuple[Usage, CallCost]:
    """What `call`, having used `usage`, costs at `catalog`'s prices (its upstream model's,
    else the route's name), and the usage as billed (an OpenAI search counted)."""
    entry = catalog.get(call.upstream_model or call.model) or catalog.get(call.model)
    if entry is not None and entry.provider == "openai":
        usage = openai_search_calls(usage, call.body)
    return usage, cost_of(entry, usage, batch=call.batch_id is not None)


def _status_by_type(table: dict[int, str]) -> dict[str, int]:
    """The status each error type stands for in a stream: a stream that started was
    accepted, so a type that stands for a client's and a server's status (`timeout`: 408
    and 504) is the server's, and among several the lowest."""
    by_type: dict[str, int] = {}
    for status, error_type in sorted(table.items(), key=lambda item: (item[0] < 500, item[0])):
        by_type.setdefault(error_type, status)
    return by_type


_STREAM_ERROR_STATUS: dict[WireFormat, dict[str, int]] = {
    "anthropic": _status_by_type(ANTHROPIC_TYPE_BY_STATUS),
    "openai": _status_by_type(OPENAI_TYPE_BY_STATUS),
}


def escalation_cost(
    catalog: ModelCatalog, escalations: list[tuple[str, str, Usage | None]]
) -> Decimal | None:
    """What the answers a call escalated from cost (stages/dispatch/escalation.py), each
    at its own model's prices; None when one is unpriced."""
    total = Decimal(0)
    for model, _, usage in escalations:
        if usage is None:
            continue
        cost = cost_of(catalog.get(model), usage).total
        if cost is None:
            return None
        total += cost
    return total


def note_answer(call: Call, usage: Usage | None, stop_reason: str | None) -> None:
    """Put what the answer used and why it stopped (Anthropic's vocabulary) on `call`; the
    answers the answer checks sent back before it are billed with it (`note_sent_back`)."""
    if usage is not None and call.sent_back:
        usage = with_iterations(usage, (*call.sent_back, *_as_iterations(usage, "message")))
    call.usage = usage
    call.stop_reason = stop_reason
    call.truncated = stop_reason in TRUNCATED


def note_sent_back(call: Call) -> None:
    """The answer an answer check sent back for one more attempt (stages/check) was
    generated and is billed all the same: its usage is kept, as iterations of kind
    `sent_back`, to be priced and recorded with the answer the call ends with."""
    if call.usage is not None:
        call.sent_back += _as_iterations(call.usage, "sent_back")


def _as_iterations(usage: Usage, kind: str) -> tuple[Iteration, ...]:
    if usage.iterations:
        return tuple(
            step if kind == "message" else replace(step, kind=kind) for step in usage.iterations
        )
    return (
        Iteration(
            kind=kind,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            cache_read_tokens=usage.cache_read_tokens,
        ),
    )


def note_stream(call: Call, usage: Usage, reason: str | None, vocabulary: WireFormat) -> None:
    """As `note_answer`, for a stream that has ended: `reason` is in `vocabulary`'s words,
    and a stream that broke before the upstream told the prompt's length gets it estimated."""
    if usage.prompt_tokens == 0:
        usage = Usage(
            input_tokens=request_input_tokens(call.body),
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            estimated=True,
        )
    note_answer(call, usage, FORMATS[vocabulary].stop_reason(reason))


def reply_leaving(call: Call, reply: Reply, keeps_answer_text: bool) -> None:
    """Before `reply`'s first byte leaves: the headroom an admitted call left goes on
    whatever reply it gets (an upstream error included), as a provider sends it on every
    reply; and the answer's text is kept from here when the ledger stores text."""
    ticket = call.admission
    if ticket is not None:
        reply.headers += ticket.headers
    if keeps_answer_text:
        call.answer_capture = bytearray(reply.body)


def chunk_sent(call: Call, chunk: bytes) -> None:
    """One streamed chunk has been handed to the client."""
    if call.first_byte_at is None:
        call.first_byte_at = time.perf_counter()
    call.previous_chunk = call.last_chunk
    call.last_chunk = chunk
    capture = call.answer_capture
    if capture is not None and len(capture) < ANSWER_CAPTURE_LIMIT:
        capture += chunk


def stream_error(call: Call) -> tuple[int, str] | None:
    """The status and type of the error event `call`'s stream ended with; None when it
    ended otherwise (or was no stream)."""
    last = call.last_chunk
    if last is None:
        return None
    tail = last[-_TAIL_BYTES:]
    previous = call.previous_chunk
    if previous is not None and len(tail) < _TAIL_BYTES:
        tail = previous[len(tail) - _TAIL_BYTES :] + tail
    wire = call.wire
    if wire.error_marker not in tail:
        return None
    parser = SSEParser()
    events = parser.feed(tail) + parser.flush()
    while events and events[-1].data.strip() == "[DONE]":
        events.pop()
    error_type = wire.classify_event(events[-1]) if events else None
    if not isinstance(error_type, str):  # the stream ended otherwise
        return None
    return _STREAM_ERROR_STATUS[call.client_format].get(error_type, 500), error_type


class Accounting:
    """Ends a call's accounting once its reply has been sent."""

    def __init__(
        self,
        catalog: ModelCatalog,
        admitter: Admitter,
        ledger: CallLedger,
        alerts: Alerts,
        metrics: GatewayMetrics,
        guardrails: GuardrailMonitor | None = None,
        prompt_cache: PromptCacheWatch | None = None,
        tracing: CallTracing | None = None,
    ) -> None:
        self.guardrails = guardrails
        self.prompt_cache = prompt_cache
        self.tracing = tracing
        self.catalog = catalog
        self.admitter = admitter
        self.ledger = ledger
        self.alerts = alerts
        self.metrics = metrics

    def finish(self, call: Call, status: int) -> asyncio.Future[None] | None:
        """Account for `call`, answered with `status`: cost, settle, record, alerts, metrics.
        With `ledger.durability: synced`, the future that resolves once the record is on
        disk (the HTTP layer awaits it before the answer's last byte)."""
        now = time.perf_counter()
        if call.last_chunk is not None:
            broken = stream_error(call)
            if broken is not None:
                status, call.error_type = broken
        ttft = None
        if call.stream and call.first_byte_at is not None:
            ttft = call.first_byte_at - call.started
        for deployment, kind in call.failures:
            self.metrics.observe_failure(deployment, kind)
        if call.guardrails:
            self.metrics.observe_guardrails(call.guardrails)
        usage = call.usage
        tokens = (0, 0, 0, 0)
        cost: CallCost | None = None
        if usage is not None:
            tokens = (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_write_tokens,
                usage.cache_read_tokens,
            )
            usage, cost = priced_usage(self.catalog, call, usage)
            call.usage, call.cost = usage, cost
            if cost.unpriced:
                self.metrics.observe_unpriced(cost.unpriced)
                _warn_unpriced(cost.unpriced, call)
        elif call.attempts == 0:  # refused, or answered from the cache: no upstream to pay
            cost = call.cost = NO_COST
        if call.escalations:
            call.escalation_cost = escalation_cost(self.catalog, call.escalations)
        latency = now - call.started
        if usage is not None and self.prompt_cache is not None:
            call.system_prompt_hash = system_prompt_hash(call.body, call.client_format)
            self.prompt_cache.observe(
                now=call.started_wall + latency,
                route=call.model,
                model=call.upstream_model,
                system_prompt=call.system_prompt_hash,
                uncached=usage.input_tokens + usage.audio_input_tokens,
                cache_write=usage.cache_write_tokens,
                cache_read=usage.cache_read_tokens,
            )
        self.admitter.finish(call)
        durable = None
        if self.ledger.enabled:
            durable = self.ledger.submit(call, status, latency=latency, ttft=ttft)
        # Errors for the spike alert are failures of the service (the gateway's or the
        # upstream's), not a client's bad request or the gateway's own rate limiting.
        self.alerts.observe_call(
            now=call.started_wall + latency,
            is_error=status >= 500 or (status == 429 and call.attempts > 0),
            cost_usd=cost.total if cost is not None else None,
        )
        # A batch line ran for hours beside the live traffic: no measure of a canary.
        if call.variant is not None and self.guardrails is not None and call.batch_id is None:
            total = cost.total if cost is not None else None
            self.guardrails.observe(
                call, status, latency, ttft, None if total is None else float(total)
            )
        self.metrics.observe_call(
            CallObservation(
                model=call.model,
                provider=call.provider_name or "-",
                client_format=call.client_format,
                status=status,
                latency=latency,
                ttft=ttft,
                retries=max(0, call.attempts - 1),
                fallback=call.fallback_used,
                truncated=call.truncated,
                stream=call.stream,
                tokens=tokens,
                cost=cost.total if cost is not None else None,
                priced=cost is None or cost.total is not None,
            )
        )
        if self.tracing is not None:
            self.tracing.end_call(call, status)
        return durable
