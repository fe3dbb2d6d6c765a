"""Truncation is never silent: an answer cut at its length limit is marked (always), and per
the route's `truncation.mode` either passed on (`flag`), refused (`refuse`), or tried once
more with `max_tokens` raised to `truncation.max_tokens_cap` (`retry_larger`)."""

from __future__ import annotations

import orjson

from tollhouse.call import Call
from tollhouse.errors import TollhouseError
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


def check_truncation(call: Call, plan: RoutePlan, checked_again: bool) -> bool:
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
        raise TruncatedAnswer(
            f"the answer was cut at its length limit (stop reason {call.stop_reason}); "
            "this route requires complete output: raise max_tokens",
            headers={"x-should-retry": "false"},
        )
    return False


def _enlarge_max_tokens(call: Call, cap: int) -> bool:
    field = call.wire.max_tokens_field(call.body)
    current = call.body.get(field)
    if not isinstance(current, int) or current >= cap:
        return False
    call.body[field] = cap
    call.raw_body = orjson.dumps(call.body)
    return True
