"""History bound: a conversation longer than its route's token budget (config
`models.<route>.history`) is sent with its oldest turns dropped instead of being refused.

What is kept, in order: the system prompt (Anthropic's `system`, Chat Completions' leading
system and developer messages), the first user message when `keep_first_user` (it usually
states the task), then the most recent messages that fit. The cut falls only where no tool
call is waiting for its result: a `tool_use` and its `tool_result` (a `tool_calls` message
and its `tool` replies) are kept or dropped together, and the kept messages never start
with a tool result. Without the first user message, they start with a user message. The
final stretch (the messages from the last place a cut may fall) is always kept, so a
conversation that can't fit is sent at its smallest and the input limits after this
policy decide about it.

The budget is the whole estimated input, counted as the input limits count it
(`tokens.estimate.request_input_tokens`); the count is left on `call.input_estimate`.
The call's reply says what was dropped (`x-tollhouse-history-trimmed`) and its record
counts the tokens removed. With `summary`, the dropped messages are replaced by a user
message holding their summary (stages/shape/history_summary.py), its room kept in the
budget.

The format's own object (`call.wire`) says where its conversation is and which tool calls
each message opens and closes; a Responses request (history as `input` items) is left alone.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.call import Call
from tollhouse.config.model import HistoryBound, HistorySummary
from tollhouse.stages.shape.policy import RequestPolicy
from tollhouse.tokens.estimate import MESSAGE_OVERHEAD, message_tokens, request_input_tokens
from tollhouse.wire.formats import Format

if TYPE_CHECKING:
    from tollhouse.ports.keys.record import KeyRecord
    from tollhouse.stages.route import RoutePlan
    from tollhouse.stages.shape.history_summary import HistorySummaries

SUMMARY_PREFIX = "Summary of the earlier part of this conversation, which is not shown:\n"


@dataclass(frozen=True, slots=True)
class TrimmedHistory:
    """A conversation cut to its bound: `messages` to send (without a summary), the
    `dropped` ones, where they were (`at`: the summary's place), and the estimated input
    tokens after the cut."""

    messages: list[Any]
    dropped: list[Any]
    at: int
    tokens_removed: int
    estimate: int


def trim_history(
    wire: Format, body: dict[str, Any], bound: HistoryBound, estimate: int | None = None
) -> TrimmedHistory | None:
    """`body`'s conversation cut to `bound` (see the module's docstring), or None when it
    fits already or has nowhere to be cut. `estimate`: `request_input_tokens(body)`, when
    known."""
    conversation = wire.conversation(body)
    if conversation is None:
        return None
    pinned, messages = conversation
    total = request_input_tokens(body) if estimate is None else estimate
    if total <= bound.max_input_tokens:
        return None
    sizes = [message_tokens(message) for message in messages]
    fixed = total - sum(sizes[pinned:])
    starts = _cut_points(wire, messages, pinned)
    head_end = pinned
    if bound.keep_first_user and starts and starts[0] == pinned and _is_user(messages[pinned]):
        head_end = pinned + 1
    room = bound.max_input_tokens - fixed - sum(sizes[pinned:head_end])
    if bound.summary is not None:
        room -= summary_room(bound.summary.max_tokens)
    # Where the kept messages may start: a cut point after the head, and (without the
    # first user message before it) a user message.
    candidates = [
        start
        for start in starts
        if start > head_end and (head_end > pinned or _is_user(messages[start]))
    ]
    if not candidates:
        return None
    tail = sum(sizes[candidates[-1] :])
    start = candidates[-1]
    for candidate in reversed(candidates[:-1]):
        extra = sum(sizes[candidate:start])
        if tail + extra > room:
            break
        tail += extra
        start = candidate
    dropped = messages[head_end:start]
    removed = sum(sizes[head_end:start])
    kept = messages[:head_end] + messages[start:]
    return TrimmedHistory(kept, dropped, head_end, removed, total - removed)


def summary_room(max_tokens: int) -> int:
    """The tokens a summary message of at most `max_tokens` tokens may take."""
    return MESSAGE_OVERHEAD + (len(SUMMARY_PREFIX) + 3) // 4 + max_tokens


def _cut_points(wire: Format, messages: list[Any], pinned: int) -> list[int]:
    """The indexes (from `pinned` on) before which the conversation may be cut: no tool call
    opened before is answered at or after it, and its message answers none."""
    opened_at: dict[str, int] = {}
    answered: list[tuple[int, int]] = []  # (opened at, answered at) of each call
    closes = []
    for index in range(pinned, len(messages)):
        opened, closed = wire.tool_links(messages[index])
        closes.append(bool(closed))
        for call_id in closed:
            if call_id in opened_at:
                answered.append((opened_at[call_id], index))
        for call_id in opened:
            opened_at[call_id] = index
    # A cut before `index` separates each pair opened before it and answered at or after it.
    straddled = [0] * (len(messages) + 1)
    for opened_index, answered_index in answered:
        straddled[opened_index + 1] += 1
        straddled[answered_index + 1] -= 1
    points = []
    depth = 0
    for index in range(pinned, len(messages)):
        depth += straddled[index]
        if depth == 0 and not closes[index - pinned]:
            points.append(index)
    return points


def _is_user(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


class HistoryBoundPolicy(RequestPolicy):
    """The route's history bound, when it has one; `summaries` writes the summaries."""

    def __init__(self, summaries: HistorySummaries | None = None) -> None:
        self.summaries = summaries

    def apply(self, call: Call, plan: RoutePlan, key: KeyRecord | None) -> Awaitable[None] | None:
        bound = plan.history
        if bound is None:
            return None
        estimate = call.input_estimate
        if estimate is None:  # counted once: the input limits after this policy reuse it
            estimate = call.input_estimate = request_input_tokens(call.body)
        trimmed = trim_history(call.wire, call.body, bound, estimate)
        if trimmed is None:
            return None
        if bound.summary is not None and self.summaries is not None:
            return _summarised(self.summaries, bound.summary, call, trimmed, key)
        _send(call, trimmed, trimmed.messages, trimmed.estimate)
        return None


async def _summarised(
    summaries: HistorySummaries,
    settings: HistorySummary,
    call: Call,
    trimmed: TrimmedHistory,
    key: KeyRecord | None,
) -> None:
    text = await summaries.summary(call, settings, trimmed.dropped, key)
    if text is None:  # the summariser failed: the cut is sent without
        _send(call, trimmed, trimmed.messages, trimmed.estimate)
        return
    note = call.wire.user_message(SUMMARY_PREFIX + text)
    messages = [*trimmed.messages[: trimmed.at], note, *trimmed.messages[trimmed.at :]]
    _send(call, trimmed, messages, trimmed.estimate + message_tokens(note))


def _send(call: Call, trimmed: TrimmedHistory, messages: list[Any], estimate: int) -> None:
    call.body = call.wire.with_conversation(call.body, messages)
    call.raw_body = orjson.dumps(call.body)
    call.input_estimate = estimate
    call.history_trimmed = (len(trimmed.dropped), trimmed.tokens_removed)
