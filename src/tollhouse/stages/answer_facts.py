"""What a whole (non-streamed) answer says about itself: why it stopped and what it used,
read from one parse of the upstream's body whatever its format.

The stop reason is given in Anthropic's vocabulary. `max_tokens` (OpenAI `length`) and
`model_context_window_exceeded` mean the answer was cut; `refusal` and `pause_turn` are
flagged too, since a caller that ignores them misreads the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tollhouse.accounting import Usage, usage_from_anthropic, usage_from_openai
from tollhouse.types import WireFormat
from tollhouse.wire.anthropic_openai import OPENAI_TO_ANTHROPIC_STOP

TRUNCATED = frozenset({"max_tokens", "model_context_window_exceeded"})
FLAGGED = frozenset({"refusal", "pause_turn"})


@dataclass(frozen=True, slots=True)
class AnswerFacts:
    stop_reason: str | None = None
    usage: Usage | None = None


def answer_facts(body: bytes, fmt: WireFormat) -> AnswerFacts:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return AnswerFacts()
    if not isinstance(doc, dict):
        return AnswerFacts()
    usage_doc = doc.get("usage")
    if fmt == "anthropic":
        reason = doc.get("stop_reason")
        usage = usage_from_anthropic(usage_doc) if isinstance(usage_doc, dict) else None
        return AnswerFacts(reason if isinstance(reason, str) else None, usage)
    usage = usage_from_openai(usage_doc) if isinstance(usage_doc, dict) else None
    return AnswerFacts(openai_stop_reason(doc), usage)


def openai_stop_reason(doc: dict[str, object]) -> str | None:
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    return anthropic_stop_reason(choices[0].get("finish_reason"))


def anthropic_stop_reason(finish_reason: object) -> str | None:
    """An OpenAI `finish_reason` in Anthropic's words."""
    if not isinstance(finish_reason, str):
        return None
    return OPENAI_TO_ANTHROPIC_STOP.get(finish_reason, finish_reason)


def max_tokens_field(body: dict[str, object]) -> str:
    """The field that bounds the answer's length in a client request body."""
    if "max_completion_tokens" in body:
        return "max_completion_tokens"
    return "max_tokens"
