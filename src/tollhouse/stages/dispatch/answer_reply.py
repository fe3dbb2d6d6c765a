"""The client's reply from an attempt's outcome: a started answer (after the answer checks,
translated to the client's format when the upstream speaks the other one, marked with the
gateway's `x-tollhouse-*` headers), or the upstream's own error relayed in the client's
format."""

from __future__ import annotations

import orjson

from tollhouse.call import Call
from tollhouse.config.model import EscalationName
from tollhouse.errors import TollhouseError, UpstreamError
from tollhouse.stages.account import note_answer, note_sent_back
from tollhouse.stages.check import WholeAnswer, check_answer
from tollhouse.stages.check.stream_buffer import unbuffered_reply
from tollhouse.stages.check.truncation import FLAGGED
from tollhouse.stages.dispatch.attempt import Answer, Failure
from tollhouse.stages.dispatch.escalation import escalates_on_check, escalation, escalation_reason
from tollhouse.stages.dispatch.stream_relay import relay_stream
from tollhouse.stages.dispatch.upstream_request import spoken_format
from tollhouse.stages.route import RoutePlan
from tollhouse.types import SSE_CONTENT_TYPE, Reply, WireFormat
from tollhouse.wire.anthropic_openai import translate_error_body

# Upstream headers a client may act on when an upstream error is relayed to it.
_RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms")


async def answer_reply(
    call: Call, plan: RoutePlan, answer: Answer, checked_again: bool
) -> Reply | Failure | None:
    """The client's reply for a started answer; None when an answer check wants one more
    attempt (`checked_again`: one already did, on this call); a Failure when the answer
    escalates to the route's next candidate (stages/dispatch/escalation.py)."""
    target = answer.target
    call.served_by = target.label
    call.upstream_model = target.upstream_model
    call.provider_name = target.provider.name
    call.upstream_request_id = _upstream_request_id(answer.response.headers)
    call.status = answer.response.status
    upstream = answer.upstream_format
    if answer.chunks is not None:
        reply = Reply(
            status=200,
            stream=relay_stream(
                call,
                answer.response,
                upstream,
                answer.chunks,
                answer.first_chunk,
                refuse_truncated=plan.truncation.mode == "refuse",
                structured=plan.structured_output,
            ),
            content_type=SSE_CONTENT_TYPE,
        )
        return _decorate(call, reply)

    body = answer.body or b""
    escalate: EscalationName | None = None
    if call.endpoint != "count_tokens":
        facts = upstream.answer_facts(body)
        note_answer(call, facts.usage, facts.stop_reason)
        escalate = escalation_reason(call, plan, target)
    if upstream.name != call.client_format:
        body = _translate_answer(call, upstream.name, body)
    if call.endpoint != "count_tokens" and escalate is None:
        try:
            if check_answer(call, plan, WholeAnswer(body), checked_again):
                note_sent_back(call)
                return None
        except TollhouseError as refused:
            if not escalates_on_check(plan, target):
                raise
            return escalation(call, target, "check", refused)
    if call.buffered_stream is not None:
        reply = unbuffered_reply(call, body)
    else:
        reply = Reply(status=answer.response.status, body=body)
    if escalate is not None:
        return escalation(call, target, escalate, reply)
    return _decorate(call, reply)


def kept_reply(call: Call, reply: Reply) -> Reply:
    """An answer an escalation kept, sent after all: marked as every answer is."""
    return _decorate(call, reply)


def _decorate(call: Call, reply: Reply) -> Reply:
    reply.add_header("x-tollhouse-attempts", str(call.attempts))
    if call.served_by:
        reply.add_header("x-tollhouse-served-by", call.served_by)
    if call.fallback_used:
        reply.add_header("x-tollhouse-fallback", "true")
    if call.stop_reason is not None:
        reply.add_header("x-tollhouse-stop-reason", call.stop_reason)
        if call.truncated:
            reply.add_header("x-tollhouse-truncated", "true")
        elif call.stop_reason in FLAGGED:
            reply.add_header("x-tollhouse-flagged", call.stop_reason)
    if call.structured_output is not None:
        reply.add_header("x-tollhouse-structured-output", call.structured_output)
    return reply


def _translate_answer(call: Call, source: WireFormat, body: bytes) -> bytes:
    try:
        doc = orjson.loads(body)
        return orjson.dumps(call.wire.answer_from(source, doc, call.body, call.model))
    except TollhouseError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamError(f"upstream answer could not be translated: {exc!r}") from None


def error_reply(call: Call, failure: Failure) -> Reply:
    """The upstream's error, relayed in the client's format, for a failure the client must
    hear as it is (its own request was wrong)."""
    status = failure.status or 502
    call.status = status
    call.served_by = failure.target.label
    if status in (401, 403):
        # The client's key was accepted by the gateway; the provider rejected the gateway's
        # own credential, which the client can neither see nor fix.
        raise UpstreamError(
            f"the upstream provider {failure.target.provider.name} rejected the gateway's "
            f"credentials (HTTP {status}); the operator must fix the provider key"
        )
    upstream = spoken_format(call, failure.target.provider)
    body = failure.body
    if upstream.name != call.client_format or not upstream.is_error_body(body):
        body = translate_error_body(body, status, call.client_format)
    reply = Reply(status=status, body=body)
    for name in _RELAYED_ERROR_HEADERS:
        value = failure.headers.get(name)
        if value:
            reply.add_header(name, value)
    return _decorate(call, reply)


def _upstream_request_id(headers: object) -> str | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("request-id") or get("x-request-id")
    return str(value) if value else None
