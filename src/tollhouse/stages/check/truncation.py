"""Truncation is never silent: an answer cut at its length limit is marked (always), and per
the route's `truncation.mode` either passed on (`flag`), refused (`refuse`), or tried once
more with `max_tokens` raised to `truncation.max_tokens_cap` (`retry_larger`).

A stream's stop reason comes at its end, once its content has reached the client. `refuse`
then ends the stream with the client format's error event instead of its normal end (see
`refuse_truncated_stream`), so no SDK takes the cut answer for a whole one. `retry_larger`
cannot retry what the client has already read: a cut stream is flagged, as with `flag` (its
own stop reason says so, and so does the call's record)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.call import Call
from tollhouse.errors import TollhouseError

if TYPE_CHECKING:
    from tollhouse.stages.route import RoutePlan

# Stop reasons (in Anthropic's vocabulary, OpenAI's `length` is `max_tokens`) that mean the
# answer was cut, and those flagged too since a caller that ignores them misreads the answer.
TRUNCATED = frozenset({"max_tokens", "model_context_window_exceeded"})
FLAGGED = frozenset({"refusal", "pause_turn"})


class TruncatedAnswer(TollhouseError):
    """The route requires complete output and the answer was cut at its length limit."""

    status = 422
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


def check_truncation(call: Call, plan: RoutePlan, answer: Any, checked_again: bool) -> bool:
    if not call.truncated:
        return False
    policy = plan.truncation
    if (
        policy.mode == "retry_larger"
        and not checked_again
        and _enlarge_max_tokens(call, policy.max_tokens_cap)
    ):
        return True
    if policy.mode == "refuse":
        raise TruncatedAnswer(_refusal(call.stop_reason), headers={"x-should-retry": "false"})
    return False


# Where an OpenAI stream ends; the SDK stops reading there, so an error must come before it.
_OPENAI_END = b"data: [DONE]"


async def refuse_truncated_stream(
    call: Call, chunks: AsyncIterator[bytes], stop_reason: Callable[[], str | None]
) -> AsyncIterator[bytes]:
    """`chunks` (the client's stream) as they come, but a stream that turns out cut at its
    length limit (`stop_reason()`, in Anthropic's words, read once the upstream ended) ends
    with the client format's error event instead of its normal end."""
    end = b""
    async for chunk in chunks:
        if end:
            end += chunk
            continue
        at = chunk.find(_OPENAI_END)
        if at < 0:
            yield chunk
            continue
        if at:
            yield chunk[:at]
        end = chunk[at:]
    reason = stop_reason()
    if reason in TRUNCATED:
        yield call.wire.stream_error_event(_refusal(reason), TruncatedAnswer.status)
    elif end:
        yield end


def _refusal(stop_reason: str | None) -> str:
    return (
        f"the answer was cut at its length limit (stop reason {stop_reason}); "
        "this route requires complete output: raise max_tokens"
    )


def _enlarge_max_tokens(call: Call, cap: int) -> bool:
    field = call.wire.max_tokens_field(call.body)
    current = call.body.get(field)
    if not isinstance(current, int) or current >= cap:
        return False
    call.body[field] = cap
    call.raw_body = orjson.dumps(call.body)
    return True
