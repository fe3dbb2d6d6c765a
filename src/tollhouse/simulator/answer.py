"""What the simulated model answers, decided once, independently of the wire format.

A request becomes an `Ask` (conversation digest, latest user text, limits, tools); the
answer is planned in this order:

1. thinking, when asked for: generated text about `min(budget, reply_tokens)` tokens long;
2. text: a matching script's reply, else generated text, else (for a tool call) nothing;
   with a JSON schema to follow (structured output), a JSON value fitting the schema;
   a script may make the answer a refusal instead (its reply, stop reason `refusal`);
3. a tool call, when tools are offered and either a script names one or `tool_choice`
   forces one (`any`/`required`: the first tool); `auto` answers with text;
4. stop sequences cut the text (`stop_sequence`), then `max_tokens` cuts thinking, text and
   tool input in that order (`max_tokens`; a cut tool input is left as partial JSON).

Output tokens are the estimate of what is emitted: thinking + text + each tool input's JSON,
at least 1 (a provider never bills an answer as 0 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.text import (
    THINKING_OPENER,
    answer_rng,
    cut_at_stop_sequence,
    generate_text,
    match_script,
    thinking_signature,
    truncate_to_tokens,
)
from tollhouse.simulator.tool_input import sample_object
from tollhouse.tokens.estimate import text_tokens

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]
REFUSAL = "I can't help with that."
ToolChoice = Literal["auto", "none", "any", "tool"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: Any


@dataclass(slots=True)
class Ask:
    """What the model is asked, whatever the wire format."""

    digest: int
    latest_user_text: str
    max_tokens: int | None
    stop_sequences: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    tool_name: str | None = None
    thinking_budget: int | None = None
    json_schema: Any = None


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: str
    """The input as JSON text, as emitted (partial JSON when cut by max_tokens)."""
    input: dict[str, Any] | None
    """The parsed input; None when cut by max_tokens."""


@dataclass(slots=True)
class Answer:
    text: str
    stop_reason: StopReason
    output_tokens: int
    stop_sequence: str | None = None
    thinking: str = ""
    signature: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


def plan_answer(ask: Ask, config: SimulatorConfig, choice: int = 0) -> Answer:
    """The answer to `ask`; `choice` tells apart the n choices of one OpenAI request."""
    script = match_script(config.scripts, ask.latest_user_text)
    thinking = signature = ""
    if ask.thinking_budget is not None:
        rng = answer_rng(ask.digest, "thinking", choice)
        length = min(ask.thinking_budget, config.reply_tokens)
        thinking = generate_text(rng, length, THINKING_OPENER + " ")
        signature = thinking_signature(thinking, ask.digest)

    if script is not None and script.stop_reason == "refusal":
        text = script.reply or REFUSAL
        return Answer(text, "refusal", max(1, text_tokens(text)), None, thinking, signature)
    call = _tool_call(ask, script.tool_call if script else None, choice)
    if script is not None and script.reply is not None:
        text = script.reply
    elif call is not None:
        text = ""
    elif ask.json_schema is not None:
        value = sample_object(ask.json_schema, answer_rng(ask.digest, "json", choice))
        text = orjson.dumps(value).decode()
    else:
        text = generate_text(answer_rng(ask.digest, "text", choice), config.reply_tokens)

    text, stop_sequence = cut_at_stop_sequence(text, ask.stop_sequences)
    calls = [call] if call is not None and stop_sequence is None else []
    stop_reason: StopReason = "tool_use" if calls else "end_turn"
    if stop_sequence is not None:
        stop_reason = "stop_sequence"

    budget = ask.max_tokens
    used = 0
    pieces = [thinking, text]
    for i, piece in enumerate(pieces):
        tokens = text_tokens(piece)
        if budget is not None and used + tokens > budget:
            pieces[i] = truncate_to_tokens(piece, budget - used)
            pieces[i + 1 :] = [""] * (len(pieces) - i - 1)
            return Answer(pieces[1], "max_tokens", budget, None, pieces[0], signature)
        used += tokens
    for tool_call in calls:
        tokens = text_tokens(tool_call.arguments)
        if budget is not None and used + tokens > budget:
            tool_call.arguments = truncate_to_tokens(tool_call.arguments, budget - used)
            tool_call.input = None
            return Answer(text, "max_tokens", budget, None, thinking, signature, calls)
        used += tokens
    return Answer(text, stop_reason, max(1, used), stop_sequence, thinking, signature, calls)


def _tool_call(ask: Ask, scripted: Any, choice: int) -> ToolCall | None:
    if not ask.tools or ask.tool_choice == "none":
        return None
    if scripted is not None:
        name = scripted.get("name") or ask.tools[0].name
    elif ask.tool_choice == "any":
        name = ask.tools[0].name
    elif ask.tool_choice == "tool" and ask.tool_name is not None:
        name = ask.tool_name
    else:
        return None
    schema = next((t.schema for t in ask.tools if t.name == name), None)
    if scripted is not None and "input" in scripted:
        value = dict(scripted["input"])
    else:
        value = sample_object(schema, answer_rng(ask.digest, f"tool:{name}", choice))
    return ToolCall(name, orjson.dumps(value).decode(), value)
