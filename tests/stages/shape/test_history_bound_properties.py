"""History bound on generated conversations (hypothesis), in both client formats: whatever
the conversation, the trimmed one never holds a tool result without its call or a call
without its result, never starts with a tool result, keeps the system prompt (and the
first user message when asked), keeps the latest messages unchanged and in order, and
respects the bound whenever the smallest history it may send fits it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tollhouse.config.model import HistoryBound, HistorySummary
from tollhouse.stages.shape.history_bound import summary_room, trim_history
from tollhouse.tokens.estimate import message_tokens, request_input_tokens
from tollhouse.wire.formats import ANTHROPIC, OPENAI, Format

words = st.text(alphabet="abcdefgh ", min_size=1, max_size=120)


@st.composite
def exchanges(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """The steps of a conversation in a format-neutral shape: a user's text, an assistant's
    text, or an assistant's tool calls followed by their results; it may start with a tool
    result whose call is gone (an orphan)."""
    steps: list[tuple[str, Any]] = []
    if draw(st.booleans()):  # a client that cut its own history: it starts with a result
        steps.append(("orphan", draw(words)))
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["user", "assistant", "tools", "tools"]))
        if kind == "tools":
            steps.append(("tools", draw(st.lists(words, min_size=1, max_size=3))))
        else:
            steps.append((kind, draw(words)))
    return steps


def anthropic_body(system: str | None, steps: list[tuple[str, Any]]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    calls = 0
    for kind, value in steps:
        if kind in ("user", "assistant"):
            messages.append({"role": kind, "content": value})
            continue
        if kind == "orphan":
            result = {"type": "tool_result", "tool_use_id": "toolu_gone", "content": value}
            messages.append({"role": "user", "content": [result]})
            continue
        ids = [f"toolu_{calls + i}" for i in range(len(value))]
        calls += len(value)
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": i, "name": "look", "input": {"q": v}}
                    for i, v in zip(ids, value, strict=True)
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": i, "content": v}
                    for i, v in zip(ids, value, strict=True)
                ],
            }
        )
    body: dict[str, Any] = {"model": "m", "max_tokens": 10, "messages": messages}
    if system is not None:
        body["system"] = system
    return body


def openai_body(system: str | None, steps: list[tuple[str, Any]]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = (
        [] if system is None else [{"role": "system", "content": system}]
    )
    calls = 0
    for kind, value in steps:
        if kind in ("user", "assistant"):
            messages.append({"role": kind, "content": value})
            continue
        if kind == "orphan":
            messages.append({"role": "tool", "tool_call_id": "call_gone", "content": value})
            continue
        ids = [f"call_{calls + i}" for i in range(len(value))]
        calls += len(value)
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": "look", "arguments": v}}
                    for i, v in zip(ids, value, strict=True)
                ],
            }
        )
        messages.extend(
            {"role": "tool", "tool_call_id": i, "content": v}
            for i, v in zip(ids, value, strict=True)
        )
    return {"model": "m", "messages": messages}


FORMATS_UNDER_TEST = st.sampled_from([(ANTHROPIC, anthropic_body), (OPENAI, openai_body)])


def assert_pairs_whole(wire: Format, messages: list[Any]) -> None:
    opened: set[str] = set()
    waiting: set[str] = set()
    for message in messages:
        ids_opened, ids_closed = wire.tool_links(message)
        for call_id in ids_closed:
            assert call_id in opened, f"orphan tool result {call_id}"
            waiting.discard(call_id)
        opened.update(ids_opened)
        waiting.update(ids_opened)
    assert not waiting, f"tool calls without their results: {sorted(waiting)}"


@settings(max_examples=400, deadline=None)
@given(
    fmt=FORMATS_UNDER_TEST,
    system=st.none() | words,
    steps=exchanges(),
    bound=st.integers(1, 400),
    keep_first=st.booleans(),
    summary=st.none() | st.integers(1, 40),
)
def test_trimmed_history_is_whole_bounded_and_keeps_what_it_must(
    fmt: tuple[Format, Any],
    system: str | None,
    steps: list[tuple[str, Any]],
    bound: int,
    keep_first: bool,
    summary: int | None,
) -> None:
    wire, build = fmt
    body = build(system, steps)
    settings_ = HistoryBound(
        max_input_tokens=bound,
        keep_first_user=keep_first,
        summary=HistorySummary(model="cheap", max_tokens=summary) if summary else None,
    )
    before = body["messages"]
    trimmed = trim_history(wire, body, settings_)
    if trimmed is None:
        return
    after = trimmed.messages
    pinned = wire.conversation(body)
    assert pinned is not None
    system_messages = before[: pinned[0]]
    assert after[: len(system_messages)] == system_messages  # the system prompt is kept
    conversation = after[len(system_messages) :]
    assert conversation, "nothing left of the conversation"
    assert len(trimmed.dropped) >= 1
    assert len(after) + len(trimmed.dropped) == len(before)
    assert_pairs_whole(wire, after)
    first_links = wire.tool_links(conversation[0])
    assert not first_links[1], "starts with a tool result"
    # The kept messages are the head (the first user message, when kept) and an unchanged
    # tail of the original.
    pinned_count = len(system_messages)
    first = before[pinned_count]
    if keep_first and first["role"] == "user" and not wire.tool_links(first)[1]:
        assert trimmed.at == pinned_count + 1
        assert after[pinned_count] is first
    else:
        assert trimmed.at == pinned_count
        assert conversation[0]["role"] == "user"
    tail = after[trimmed.at :]
    assert tail
    assert before[len(before) - len(tail) :] == tail
    # The estimate is what the kept body counts, and within the bound unless the smallest
    # history (the head and the last stretch that can't be cut) doesn't fit.
    sent = {**body, "messages": after}
    assert trimmed.estimate == request_input_tokens(sent)
    assert trimmed.tokens_removed == sum(message_tokens(m) for m in trimmed.dropped)
    reserve = summary_room(summary) if summary else 0
    smallest = trim_history(
        wire, body, HistoryBound(max_input_tokens=1, keep_first_user=keep_first)
    )
    assert smallest is not None
    if smallest.estimate + reserve <= bound:
        assert trimmed.estimate + reserve <= bound


@settings(max_examples=200, deadline=None)
@given(fmt=FORMATS_UNDER_TEST, system=st.none() | words, steps=exchanges())
def test_a_history_within_its_bound_is_left_alone(
    fmt: tuple[Format, Any], system: str | None, steps: list[tuple[str, Any]]
) -> None:
    wire, build = fmt
    body = build(system, steps)
    estimate = request_input_tokens(body)
    assert trim_history(wire, body, HistoryBound(max_input_tokens=estimate)) is None


def test_a_responses_request_is_not_bounded() -> None:
    from tollhouse.wire.formats import RESPONSES

    body = {"model": "m", "input": [{"role": "user", "content": "x" * 4000}]}
    assert trim_history(RESPONSES, body, HistoryBound(max_input_tokens=1)) is None
