"""Dispatch: get the call answered by one of its route's deployments.

Deployments are tried in order (the fallback chain); open circuit breakers are skipped at
once. On a retryable failure (see `reliability.failure_class`) the same deployment is tried
again after a backoff with full jitter, or after the upstream's `retry-after` when it gave
one, up to `retry.max_attempts`; then the call moves on to the next deployment when the
route's `fallback_on` lists the failure's class. No wait is taken that would pass the call's
deadline. A client error is relayed at once. When nothing is left, `degrade` answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import orjson

from tollhouse.call import Call
from tollhouse.errors import TollhouseError, UpstreamError
from tollhouse.reliability.backoff import backoff_delay
from tollhouse.reliability.failure_class import RETRYABLE
from tollhouse.server.reply import SSE_CONTENT_TYPE, Reply
from tollhouse.stages.answer_facts import FLAGGED, TRUNCATED, answer_facts, max_tokens_field
from tollhouse.stages.dispatch.attempt import Answer, Failure, attempt
from tollhouse.stages.dispatch.degrade import StaleLookup, degrade
from tollhouse.stages.dispatch.stream_relay import relay_stream
from tollhouse.stages.route import RoutePlan, Target
from tollhouse.wire.anthropic_openai import (
    anthropic_response_to_openai,
    openai_response_to_anthropic,
    translate_error_body,
)

# Upstream headers a client may act on when an upstream error is relayed to it.
_RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms")
# Answers are given this much before the client's own timeout, so it hears why.
_CLIENT_DEADLINE_MARGIN = 0.5


class TruncatedAnswer(TollhouseError):
    """The route requires complete output and the answer was cut at its length limit."""

    status = 422
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


def call_deadline(call: Call, plan: RoutePlan) -> float:
    """The monotonic time by which the answer must have started."""
    budget = plan.timeouts.total
    # The official SDKs send their timeout: per request as `x-stainless-timeout`, else the
    # client's read timeout as `x-stainless-read-timeout` (anthropic 2.x sends `NOT_GIVEN`
    # in the first when no per-request timeout was set).
    for header in ("x-tollhouse-timeout", "x-stainless-timeout", "x-stainless-read-timeout"):
        value = call.headers.get(header)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds > 0:
                budget = min(budget, max(seconds - _CLIENT_DEADLINE_MARGIN, seconds * 0.9))
    return call.started + budget


async def dispatch(call: Call, plan: RoutePlan, stale: StaleLookup | None = None) -> Reply:
    call.deadline = call_deadline(call, plan)
    failures: list[Failure] = []
    skipped = 0
    targets = plan.targets
    for index, target in enumerate(targets):
        if not target.breaker.allow():
            skipped += 1
            continue
        if index > 0 and (failures or skipped):
            call.fallback_used = True
        hedge = _next_open(targets, index) if plan.hedge_after is not None else None
        outcome = await _try_deployment(call, plan, target, hedge, failures)
        if isinstance(outcome, Reply):
            return outcome
        if outcome is None:
            break
        if outcome.kind not in plan.fallback_on or time.monotonic() >= call.deadline:
            break
    return degrade(call, plan, failures, skipped, stale)


def _next_open(targets: tuple[Target, ...], index: int) -> Target | None:
    for target in targets[index + 1 :]:
        if target.breaker.state == "closed":
            return target
    return None


async def _try_deployment(
    call: Call,
    plan: RoutePlan,
    target: Target,
    hedge: Target | None,
    failures: list[Failure],
) -> Reply | Failure | None:
    """Attempts at one deployment. A Reply ends the call; a Failure may move it on to the
    next deployment; None means the deadline has passed."""
    retry = plan.retry
    larger_tried = False
    allowed = retry.max_attempts
    for number in itertools.count():
        if number >= allowed:
            break
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            return None
        first_byte = min(plan.timeouts.first_byte, remaining)
        if hedge is not None and number == 0:
            outcome = await _hedged(call, target, hedge, plan, first_byte)
        else:
            call.attempts += 1
            outcome = await attempt(call, target, first_byte, plan.timeouts.read_idle)
        if isinstance(outcome, Answer):
            outcome.target.breaker.record_success()
            reply = await _answer_reply(call, plan, outcome, larger_tried)
            if reply is not None:
                return reply
            # Truncated: one more attempt with a larger max_tokens, on top of the retries.
            larger_tried = True
            allowed += 1
            continue
        failure = outcome
        failures.append(failure)
        call.failures.append((failure.target.label, failure.kind))
        if failure.kind == "client_error":
            failure.target.breaker.record_success()  # it answered; the request was wrong
            return _relay_error(call, failure)
        if failure.kind == "context_window":
            failure.target.breaker.release_probe()
            if "context_window" not in plan.fallback_on:
                return _relay_error(call, failure)
            return failure
        failure.target.breaker.record_failure()
        if failure.kind not in RETRYABLE or number + 1 >= allowed:
            return failure
        if not target.breaker.allow():
            return failure
        wait = failure.retry_after
        if wait is None:
            wait = backoff_delay(number, retry.base_delay, retry.max_delay)
        elif wait > retry.max_retry_after:
            return failure
        if time.monotonic() + wait >= call.deadline:
            return failure
        await asyncio.sleep(wait)
    return failures[-1] if failures else None


async def _hedged(
    call: Call, primary: Target, secondary: Target, plan: RoutePlan, first_byte: float
) -> Answer | Failure:
    """Start on `primary`; if its answer has not started after `hedge_after`, also try
    `secondary`. The first answer to start wins and the other attempt is cancelled."""
    assert plan.hedge_after is not None
    call.attempts += 1
    first: asyncio.Future[Answer | Failure] = asyncio.ensure_future(
        attempt(call, primary, first_byte, plan.timeouts.read_idle)
    )
    done, _ = await asyncio.wait({first}, timeout=plan.hedge_after)
    if done:
        return first.result()
    call.attempts += 1
    second = asyncio.ensure_future(attempt(call, secondary, first_byte, plan.timeouts.read_idle))
    pending: set[asyncio.Future[Answer | Failure]] = {first, second}
    result: Answer | Failure | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            outcomes = [task.result() for task in done]
            answers = [o for o in outcomes if isinstance(o, Answer)]
            if answers:
                winner = answers[0]
                for loser in answers[1:]:  # both started in the same instant
                    await loser.response.aclose()
                if winner.target is secondary:
                    call.fallback_used = True
                return winner
            for outcome in outcomes:
                if outcome.target is secondary:
                    outcome.target.breaker.record_failure()
                result = outcome if outcome.target is primary or result is None else result
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                late = await task
                if isinstance(late, Answer):
                    await late.response.aclose()
    assert result is not None
    return result


async def _answer_reply(
    call: Call, plan: RoutePlan, answer: Answer, larger_tried: bool
) -> Reply | None:
    """The client's reply for a started answer; None when the truncation policy wants one
    more attempt with a larger `max_tokens`."""
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
            stream=relay_stream(call, answer.response, upstream, answer.chunks, answer.first_chunk),
            content_type=SSE_CONTENT_TYPE,
        )
        return _decorate(call, reply)

    body = answer.body or b""
    if call.endpoint != "count_tokens":
        facts = answer_facts(body, upstream)
        call.stop_reason = facts.stop_reason
        call.usage = facts.usage
        call.truncated = call.stop_reason in TRUNCATED
        retry_larger = plan.truncation.mode == "retry_larger" and not larger_tried
        if (
            call.truncated
            and retry_larger
            and _enlarge_max_tokens(call, plan.truncation.max_tokens_cap)
        ):
            return None
        if call.truncated and plan.truncation.mode == "refuse":
            raise TruncatedAnswer(
                f"the answer was cut at its length limit (stop reason {call.stop_reason}); "
                "this route requires complete output: raise max_tokens",
                headers={"x-should-retry": "false"},
            )
    if upstream != call.client_format:
        body = _translate_answer(call, body)
    return _decorate(call, Reply(status=answer.response.status, body=body))


def _enlarge_max_tokens(call: Call, cap: int) -> bool:
    field = max_tokens_field(call.body)
    current = call.body.get(field)
    if not isinstance(current, int) or current >= cap:
        return False
    call.body[field] = cap
    call.raw_body = orjson.dumps(call.body)
    return True


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
    return reply


def _translate_answer(call: Call, body: bytes) -> bytes:
    try:
        doc = orjson.loads(body)
        if call.client_format == "openai":
            return orjson.dumps(anthropic_response_to_openai(doc, call.model))
        return orjson.dumps(openai_response_to_anthropic(doc, call.model))
    except TollhouseError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamError(f"upstream answer could not be translated: {exc!r}") from None


def _relay_error(call: Call, failure: Failure) -> Reply:
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
    upstream = failure.target.provider.wire_format
    body = failure.body
    if upstream != call.client_format or not _is_error_body(body, upstream):
        body = translate_error_body(body, status, call.client_format)
    reply = Reply(status=status, body=body)
    for name in _RELAYED_ERROR_HEADERS:
        value = failure.headers.get(name)
        if value:
            reply.add_header(name, value)
    return _decorate(call, reply)


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


def _upstream_request_id(headers: object) -> str | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("request-id") or get("x-request-id")
    return str(value) if value else None
