"""The cheapest model that does the job, through both SDKs on the simulator: a route lists
its candidates cheapest first with rules (input tokens, a regex or a classifier on the
last user turn, a tool present) that choose where a call starts, and an answer that is
refused, cut, fails a check or fails outright escalates to the next one. The reply and the
ledger say which rule chose and whether the call escalated."""

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

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-1-20250805"
LONG = "grapes " * 200
SCRIPTS = [
    {"pattern": "REFUSE", "stop_reason": "refusal"},
    {"pattern": "LONG", "reply": LONG},
]


def hard(text: str) -> bool:
    """The test's classifier: a question is hard when it says so."""
    return "HARD" in text


def sim(fmt: str, **options: Any) -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": fmt, **options}}


TIERS: list[dict[str, Any]] = [
    {"provider": "cheap", "model": HAIKU},
    {"provider": "dear", "model": SONNET, "when": {"input_tokens_above": 300}},
    {
        "provider": "dear",
        "model": OPUS,
        "when": {
            "last_user_matches": "(?i)\\bprove\\b",
            "classifier": "tests.stages.route.test_candidates:hard",
            "tool_present": "calculator",
        },
    },
]
CONFIG: dict[str, Any] = {
    **IN_PROCESS_CONFIG,
    "providers": {
        "cheap": sim("anthropic", scripts=SCRIPTS, reply_tokens=5),
        "dear": sim("anthropic", reply_tokens=5),
        "broken": sim("anthropic", faults=[{"fault": "529"}]),
        "cheap-openai": sim("openai", scripts=SCRIPTS, reply_tokens=5),
        "dear-openai": sim("openai", reply_tokens=5),
    },
    "models": {
        "tiered": {"deployments": TIERS, "escalate_on": ["refusal", "truncation", "check"]},
        "tiered-gpt": {
            "deployments": [
                {"provider": "cheap-openai", "model": "gpt-4.1-nano"},
                {"provider": "dear-openai", "model": "gpt-4.1", "when": {"tool_present": True}},
            ],
            "escalate_on": ["refusal", "truncation"],
        },
        "checked": {  # the truncation refusal is an answer check: escalates on `check`
            "deployments": [
                {"provider": "cheap", "model": HAIKU},
                {"provider": "dear", "model": SONNET},
            ],
            "escalate_on": ["check"],
            "truncation": {"mode": "refuse"},
        },
        "flaky-cheap": {
            "deployments": [
                {"provider": "broken", "model": HAIKU},
                {"provider": "dear", "model": SONNET},
            ],
            "escalate_on": ["refusal"],
        },
        "no-better": {
            "deployments": [
                {"provider": "cheap", "model": HAIKU},
                {"provider": "broken", "model": SONNET},
            ],
            "escalate_on": ["refusal"],
        },
        "plain": {
            "deployments": [
                {"provider": "cheap", "model": HAIKU},
                {"provider": "dear", "model": SONNET},
            ]
        },
    },
}


@contextmanager
def gateway(
    tmp_path: Path,
) -> Iterator[tuple[anthropic.Anthropic, openai.OpenAI, list[CallRecord]]]:
    """Clients of a gateway of `CONFIG`; the list holds the ledger's records once it ends."""
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None}
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


def ask(claude: anthropic.Anthropic, text: str, model: str = "tiered", **extra: Any) -> Any:
    return claude.messages.with_raw_response.create(
        model=model, max_tokens=40, messages=[{"role": "user", "content": text}], **extra
    )


CALCULATOR: Any = {"name": "calculator", "description": "adds", "input_schema": {"type": "object"}}


@pytest.mark.parametrize(
    ("text", "extra", "served", "rule"),
    [
        ("what is a grape?", {}, HAIKU, "default"),
        ("grapes " * 200, {}, SONNET, "input_tokens_above"),
        ("Prove that grapes exist", {}, OPUS, "last_user_matches"),
        ("a HARD one", {}, OPUS, "classifier"),
        ("add 2 and 2", {"tools": [CALCULATOR]}, OPUS, "tool_present"),
    ],
)
def test_the_rules_choose_the_cheapest_candidate_that_fits(
    tmp_path: Path, text: str, extra: dict[str, Any], served: str, rule: str
) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, text, **extra)
    assert raw.headers["x-tollhouse-route-rule"] == rule
    assert "x-tollhouse-escalated" not in raw.headers
    assert raw.parse().model == served
    (record,) = records
    assert (record.model_served, record.route_rule, record.escalated) == (served, rule, False)


def test_a_refusal_escalates_to_the_next_candidate_and_both_answers_are_paid(
    tmp_path: Path,
) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, "REFUSE this")
    answer = raw.parse()
    assert answer.model == SONNET
    assert answer.stop_reason == "end_turn"
    assert raw.headers["x-tollhouse-escalated"] == "true"
    assert raw.headers["x-tollhouse-route-rule"] == "default"
    (record,) = records
    assert record.escalated is True
    assert record.route_rule == "default"
    assert record.metadata["escalations"] == [f"{HAIKU}:refusal"]
    assert record.escalated_cost_usd is not None
    assert record.escalated_cost_usd > 0  # the refusal was billed too
    assert record.cost_usd is not None
    assert record.cost_usd > 0


def test_a_cut_answer_escalates_on_truncation(tmp_path: Path) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, "LONG please")
    answer = raw.parse()
    assert (answer.model, answer.stop_reason) == (SONNET, "end_turn")
    assert records[0].metadata["escalations"] == [f"{HAIKU}:truncation"]
    assert records[0].truncated is False


def test_an_answer_check_that_refuses_escalates_on_check(tmp_path: Path) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, "LONG please", model="checked")
    assert raw.parse().model == SONNET
    assert records[0].metadata["escalations"] == [f"{HAIKU}:check"]


def test_a_failing_cheap_candidate_escalates_as_a_fallback(tmp_path: Path) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, "hello", model="flaky-cheap")
    assert raw.parse().model == SONNET
    assert raw.headers["x-tollhouse-escalated"] == "true"
    assert records[0].escalated is True
    assert "escalations" not in records[0].metadata  # no answer was moved on from


def test_without_a_better_answer_the_cheap_one_is_sent_after_all(tmp_path: Path) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, "REFUSE this", model="no-better")
    answer = raw.parse()
    assert raw.http_response.status_code == 200
    assert (answer.model, answer.stop_reason) == (HAIKU, "refusal")
    assert raw.headers["x-tollhouse-flagged"] == "refusal"
    (record,) = records
    assert record.escalated is True
    assert record.stop_reason == "refusal"
    assert record.escalated_cost_usd is None  # the answer sent is not an escalated one
    assert record.cost_usd is not None
    assert record.cost_usd > 0


def test_a_refused_stream_is_not_escalated_once_it_reached_the_client(tmp_path: Path) -> None:
    with (
        gateway(tmp_path) as (claude, _, records),
        claude.messages.stream(
            model="tiered", max_tokens=40, messages=[{"role": "user", "content": "REFUSE"}]
        ) as stream,
    ):
        final = stream.get_final_message()
    assert (final.model, final.stop_reason) == (HAIKU, "refusal")
    assert records[0].escalated is False


def test_a_route_without_candidates_records_no_rule(tmp_path: Path) -> None:
    with gateway(tmp_path) as (claude, _, records):
        raw = ask(claude, "REFUSE this", model="plain")
    assert raw.parse().stop_reason == "refusal"  # no escalate_on: the answer stands
    assert "x-tollhouse-route-rule" not in raw.headers
    assert (records[0].route_rule, records[0].escalated) == (None, False)


def test_openai_clients_escalate_on_a_content_filter_stop_and_choose_by_tool(
    tmp_path: Path,
) -> None:
    tool: Any = {"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}
    with gateway(tmp_path) as (_, gpt, records):
        refused = gpt.chat.completions.with_raw_response.create(
            model="tiered-gpt", max_tokens=40, messages=[{"role": "user", "content": "REFUSE"}]
        )
        with_tool = gpt.chat.completions.with_raw_response.create(
            model="tiered-gpt",
            max_tokens=40,
            tools=[tool],
            messages=[{"role": "user", "content": "add"}],
        )
    escalated = refused.parse()
    assert escalated.model == "gpt-4.1"
    assert escalated.choices[0].finish_reason != "content_filter"
    assert refused.headers["x-tollhouse-escalated"] == "true"
    assert with_tool.headers["x-tollhouse-route-rule"] == "tool_present"
    assert with_tool.parse().model == "gpt-4.1"
    by_rule = {record.route_rule: record for record in records}
    assert by_rule["default"].metadata["escalations"] == ["gpt-4.1-nano:refusal"]
    assert by_rule["tool_present"].escalated is False


@pytest.mark.parametrize(
    ("deployments", "message"),
    [
        (
            [{"provider": "cheap", "model": HAIKU, "when": {"tool_present": True}}],
            "deployments[0].when: the first deployment is where calls start",
        ),
        (
            [TIERS[0], {"provider": "dear", "model": SONNET, "when": {}}],
            "deployments[1].when: set at least one of",
        ),
        (
            [TIERS[0], {"provider": "dear", "model": SONNET, "when": {"last_user_matches": "("}}],
            "deployments[1].when.last_user_matches: not a valid regular expression",
        ),
        (
            [
                TIERS[0],
                {"provider": "dear", "model": SONNET, "when": {"classifier": "no_such.mod:f"}},
            ],
            "deployments[1].when.classifier: cannot import 'no_such.mod'",
        ),
        (
            [
                TIERS[0],
                {
                    "provider": "dear",
                    "model": SONNET,
                    "when": {"classifier": "tests.stages.route.test_candidates:nothing"},
                },
            ],
            "deployments[1].when.classifier: 'tests.stages.route.test_candidates' has no function 'nothing'",
        ),
    ],
)
def test_a_wrong_rule_is_refused_at_load_naming_its_key(
    deployments: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({**CONFIG, "models": {"tiered": {"deployments": deployments}}})
    assert f"$.models.tiered.{message}" in str(refused.value)


def test_an_unknown_escalation_kind_is_refused_naming_the_key() -> None:
    routes = {"tiered": {"deployments": TIERS, "escalate_on": ["boredom"]}}
    with pytest.raises(ConfigError) as refused:
        parse_config({**CONFIG, "models": routes})
    assert "$.models.tiered.escalate_on" in str(refused.value)
