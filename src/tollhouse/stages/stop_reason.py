"""stop_reason discipline: a truncated answer is never passed off as complete.

The stop reason is read in Anthropic's vocabulary whatever the upstream format. `max_tokens`
(OpenAI `length`) and `model_context_window_exceeded` mean the answer was cut; `refusal` and
`pause_turn` are flagged too, since a caller that ignores them misreads the answer.
"""

from __future__ import annotations

import orjson

from tollhouse.providers.base import WireFormat
from tollhouse.wire.anthropic_openai import OPENAI_TO_ANTHROPIC_STOP

TRUNCATED = frozenset({"max_tokens", "model_context_window_exceeded"})
FLAGGED = frozenset({"refusal", "pause_turn"})


def stop_reason_of(body: bytes, fmt: WireFormat) -> str | None:
    """The stop reason of a whole (non-streamed) answer in `fmt`, in Anthropic's words."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if fmt == "anthropic":
        reason = doc.get("stop_reason")
        return reason if isinstance(reason, str) else None
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    finish = choices[0].get("finish_reason")
    if not isinstance(finish, str):
        return None
    return OPENAI_TO_ANTHROPIC_STOP.get(finish, finish)


def max_tokens_field(body: dict[str, object]) -> str:
    """The field that bounds the answer's length in a client request body."""
    if "max_completion_tokens" in body:
        return "max_completion_tokens"
    return "max_tokens"
