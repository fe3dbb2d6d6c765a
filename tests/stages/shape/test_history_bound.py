"""History bound through the official SDKs on the simulator (which refuses a tool result
without its call, as the providers do): a conversation over its route's budget is trimmed,
not refused, the reply says how much was dropped and the ledger counts it; a summary of the
dropped messages is written by the configured cheap route, once per dropped span."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.config import ConfigError, parse_config
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.stages.shape.history_bound import SUMMARY_PREFIX

SUMMARY = "The user asked about grapes; the assistant looked them up."

ROUTES: dict[str, Any] = {
    "bounded": {
        "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
        "history": {"max_input_tokens": 300},
        "input_limits": {"max_input_tokens": 320},
    },
    "limited": {  # the same limit without a bound: refused
        "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
        "input_limits": {"max_input_tokens": 320},
    },
    "bounded-gpt": {
        "deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}],
        "history": {"max_input_tokens": 300, "keep_first_user": False},
    },
    "summarised": {
        "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
        "history": {"max_input_tokens": 400, "summary": {"model": "summariser", "max_tokens": 40}},
    },
    "summariser": {"deployments": [{"provider": "sim-summary", "model": "claude-haiku-4-5"}]},
}
CONFIG: dict[str, Any] = {
    **IN_PROCESS_CONFIG,
    "providers": {
        **IN_PROCESS_CONFIG["providers"],
        "sim-summary": {
            "type": "simulator",
            "simulator": {"format": "anthropic", "scripts": [{"pattern": ".", "reply": SUMMARY}]},
        },
    },
    "models": ROUTES,
}


@contextmanager
def gateway(
    tmp_path: Path,
) -> Iterator[tuple[anthropic.Anthropic, openai.OpenAI, list[CallRecord]]]:
    """Clients of a gateway of `CONFIG`; the list holds the ledger's records once it ends."""
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None, "text": "full"}
    server = serve_gateway({**CONFIG, "ledger": ledger})
    records: list[CallRecord] = []
    try:
        yield (
            anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0),
            openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0),
            records,
        )
    finally:
        server.stop()
    records.extend(read_sqlite(tmp_path / "ledger.db"))


def filler(tag: str) -> str:
    return f"{tag} " + "grapes and more grapes " * 6


def anthropic_conversation(turns: int) -> list[dict[str, Any]]:
    """A task, then `turns` rounds of question, tool call and tool result, then a question."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "TASK: help me with grapes"}]
    for i in range(turns):
        messages += [
            {"role": "assistant", "content": filler(f"answer-{i}")},
            {"role": "user", "content": filler(f"question-{i}")},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"toolu_{i}", "name": "look", "input": {"q": i}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": filler("r")}
                ],
            },
        ]
    messages += [
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "LAST: so which grapes?"},
    ]
    return messages


TOOLS: Any = [{"name": "look", "description": "look up", "input_schema": {"type": "object"}}]


def test_an_anthropic_conversation_over_its_bound_is_trimmed_whole_and_recorded(
    tmp_path: Path,
) -> None:
    messages = anthropic_conversation(6)
    with gateway(tmp_path) as (claude, _, records):
        raw = claude.messages.with_raw_response.create(
            model="bounded",
            max_tokens=20,
            system="You know grapes.",
            tools=TOOLS,
            messages=messages,
        )
        answer = raw.parse()
    trimmed = raw.headers["x-tollhouse-history-trimmed"]
    dropped, removed = (int(part.split("=")[1]) for part in trimmed.split("; "))
    assert dropped > 0
    assert removed > 0
    assert answer.usage.input_tokens <= 300  # the simulator's count, by the same rule
    (record,) = records
    assert (record.history_trimmed_messages, record.history_trimmed_tokens) == (dropped, removed)
    assert record.prompt_text is not None
    sent = record.prompt_text.splitlines()
    assert sent[0] == "system: You know grapes."
    assert sent[1] == "user: TASK: help me with grapes"  # the first user message, kept
    assert sent[-1] == "user: LAST: so which grapes?"
    assert "answer-0" not in record.prompt_text  # the oldest turns went first


def test_the_same_conversation_without_a_bound_is_refused_by_the_input_limit(
    tmp_path: Path,
) -> None:
    with (
        gateway(tmp_path) as (claude, _, _records),
        pytest.raises(anthropic.BadRequestError) as refused,
    ):
        claude.messages.create(
            model="limited", max_tokens=20, tools=TOOLS, messages=anthropic_conversation(6)
        )
    assert "the limit is 320" in refused.value.message


def test_a_conversation_within_its_bound_is_sent_as_it_is(tmp_path: Path) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = claude.messages.with_raw_response.create(
            model="bounded", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    assert "x-tollhouse-history-trimmed" not in raw.headers
    assert records[0].history_trimmed_tokens == 0


def test_an_openai_conversation_keeps_its_system_prompt_and_tool_replies_with_their_call(
    tmp_path: Path,
) -> None:
    messages: list[Any] = [{"role": "system", "content": "You know grapes."}]
    for i in range(6):
        messages += [
            {"role": "user", "content": filler(f"question-{i}")},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{i}_{j}",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"q": 1}'},
                    }
                    for j in range(2)
                ],
            },
            *(
                {"role": "tool", "tool_call_id": f"call_{i}_{j}", "content": filler("result")}
                for j in range(2)
            ),
            {"role": "assistant", "content": filler(f"answer-{i}")},
        ]
    messages.append({"role": "user", "content": "LAST: which?"})
    with gateway(tmp_path) as (_, gpt, records):
        raw = gpt.chat.completions.with_raw_response.create(
            model="bounded-gpt", max_tokens=20, messages=messages
        )
        completion = raw.parse()
    assert raw.headers["x-tollhouse-history-trimmed"].startswith("messages=")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens <= 300
    assert records[0].prompt_text is not None
    sent = records[0].prompt_text.splitlines()
    assert sent[0] == "system: You know grapes."
    assert sent[1].startswith("user: question-")  # keep_first_user off: starts with a user turn
    assert "question-0" not in records[0].prompt_text
    assert records[0].history_trimmed_messages > 0


def test_a_summary_of_the_dropped_turns_is_written_once_by_the_cheap_route(
    tmp_path: Path,
) -> None:
    messages = anthropic_conversation(6)
    with gateway(tmp_path) as (claude, _, records):
        first = claude.messages.with_raw_response.create(
            model="summarised", max_tokens=20, tools=TOOLS, messages=messages
        )
        again = claude.messages.with_raw_response.create(
            model="summarised", max_tokens=20, tools=TOOLS, messages=messages
        )
    assert (
        first.headers["x-tollhouse-history-trimmed"] == again.headers["x-tollhouse-history-trimmed"]
    )
    assert first.parse().usage.input_tokens <= 400
    by_route: dict[str, list[CallRecord]] = {}
    for record in records:
        by_route.setdefault(record.route or "", []).append(record)
    (summary_call,) = by_route["summariser"]  # the second call's summary came from the cache
    assert summary_call.status == 200
    assert summary_call.cost_usd is not None
    assert summary_call.cost_usd > 0
    assert summary_call.prompt_text is not None
    assert "answer-0" in summary_call.prompt_text  # what was dropped is what was summarised
    for record in by_route["summarised"]:
        assert record.prompt_text is not None
        assert f"user: {SUMMARY_PREFIX}{SUMMARY}" in record.prompt_text
        assert "answer-0" not in record.prompt_text


def test_a_failing_summariser_leaves_the_trimmed_history_without_a_summary(
    tmp_path: Path,
) -> None:
    config = {
        **CONFIG,
        "providers": {
            **CONFIG["providers"],
            "sim-summary": {
                "type": "simulator",
                "simulator": {"format": "anthropic", "faults": [{"fault": "400"}]},
            },
        },
    }
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None, "text": "full"}
    server = serve_gateway({**config, "ledger": ledger})
    try:
        claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
        raw = claude.messages.with_raw_response.create(
            model="summarised", max_tokens=20, tools=TOOLS, messages=anthropic_conversation(6)
        )
    finally:
        server.stop()
    assert raw.http_response.status_code == 200
    assert "x-tollhouse-history-trimmed" in raw.headers
    records = {record.route: record for record in read_sqlite(tmp_path / "ledger.db")}
    assert records["summariser"].status == 400
    assert SUMMARY_PREFIX.strip() not in (records["summarised"].prompt_text or "")


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ({"model": "nowhere"}, "'nowhere' is no route of this config"),
        ({"model": "bounded"}, "may not bound its own history"),
    ],
)
def test_a_summary_route_that_is_missing_or_bounded_itself_is_refused_at_load(
    summary: dict[str, Any], message: str
) -> None:
    routes = {
        **ROUTES,
        "summarised": {
            **ROUTES["summarised"],
            "history": {"max_input_tokens": 400, "summary": summary},
        },
    }
    with pytest.raises(ConfigError) as refused:
        parse_config({**CONFIG, "models": routes})
    assert "$.models.summarised.history.summary.model" in str(refused.value)
    assert message in str(refused.value)


def test_a_bound_of_zero_tokens_is_refused_naming_the_key() -> None:
    routes = {**ROUTES, "bounded": {**ROUTES["bounded"], "history": {"max_input_tokens": 0}}}
    with pytest.raises(ConfigError) as refused:
        parse_config({**CONFIG, "models": routes})
    assert "$.models.bounded.history.max_input_tokens" in str(refused.value)
