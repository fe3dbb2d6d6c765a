"""Why generation stopped, in each wire format's own words.

The maps are total over the values each provider documents; a value a provider adds later
falls back to the plain "stopped normally" reason of the other side (`stop` / `end_turn`)
rather than failing a response that is otherwise fine.
"""

from __future__ import annotations

ANTHROPIC_TO_OPENAI_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # A paused server-tool turn has no OpenAI equivalent; the text so far is a whole answer.
    "pause_turn": "stop",
}

# OpenAI's "stop" covers both a natural end and a stop sequence and does not say which, so it
# maps to end_turn (and `stop_sequence` stays null).
OPENAI_TO_ANTHROPIC_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def openai_finish_reason(stop_reason: str | None) -> str:
    return ANTHROPIC_TO_OPENAI_FINISH.get(stop_reason or "", "stop")


def anthropic_stop_reason(finish_reason: str | None) -> str:
    return OPENAI_TO_ANTHROPIC_STOP.get(finish_reason or "", "end_turn")
