"""Suite files: what a case is built from, and errors that name the file, line and key."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from tollhouse.evals.suite import SuiteError, load_suite

SUITE = """\
name: capitals
api: anthropic
model: claude-sonnet-4-5
system: Answer in one word.
parameters: {max_tokens: 50, temperature: 0}
template: "What is the capital of {{ country }}?"
judge: {model: judge}
cases:
  - id: france
    variables: {country: France}
    checks:
      - contains: Paris
      - {regex: "^Paris", name: starts}
  - id: conversation
    messages:
      - {role: user, content: Hi}
      - {role: assistant, content: Hello}
      - {role: user, content: "Capital of Spain?"}
    parameters: {max_tokens: 10}
    checks:
      - max_cost_usd: 0.01
      - judge: Names Madrid.
  - prompt: Say hi.
    notes: anything for people
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    return str(caught.value)


def test_cases_come_from_a_template_messages_or_a_prompt(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, SUITE))

    france, conversation, third = suite.cases
    assert (suite.name, suite.api, suite.model) == ("capitals", "anthropic", "claude-sonnet-4-5")
    assert france.messages == ({"role": "user", "content": "What is the capital of France?"},)
    assert france.system == "Answer in one word."
    assert [m["content"] for m in conversation.messages] == ["Hi", "Hello", "Capital of Spain?"]
    assert conversation.parameters == {"max_tokens": 10, "temperature": 0}
    assert third.id == "3"
    assert third.messages == ({"role": "user", "content": "Say hi."},)
    assert third.checks == ()


def test_checks_are_parsed_once_with_their_names(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, SUITE))

    france, conversation, _ = suite.cases
    assert [(c.kind, c.name) for c in france.checks] == [
        ("contains", "contains"),
        ("regex", "starts"),
    ]
    assert france.checks[0].value == ("Paris",)
    assert isinstance(france.checks[1].value, re.Pattern)
    assert conversation.checks[0].value == Decimal("0.01")
    assert conversation.checks[1].value.model == "judge"
    assert suite.check_names == ("contains", "starts", "max_cost_usd", "judge")


def test_jsonl_has_a_case_a_line_and_an_optional_settings_line(tmp_path: Path) -> None:
    lines = [
        {"suite": {"name": "lines", "model": "gpt-4o-mini", "api": "openai"}},
        {"id": "a", "prompt": "one", "checks": [{"contains": "x"}]},
        {"id": "b", "prompt": "two"},
    ]
    path = write(tmp_path, "\n".join(json.dumps(line) for line in lines) + "\n", "s.jsonl")

    suite = load_suite(path)

    assert (suite.name, suite.api, suite.model) == ("lines", "openai", "gpt-4o-mini")
    assert [case.id for case in suite.cases] == ["a", "b"]


def test_jsonl_errors_name_the_line_of_the_case(tmp_path: Path) -> None:
    lines = ['{"prompt": "one"}', "", '{"prompt": "two", "checks": [{"regex": "("}]}']
    path = write(tmp_path, "\n".join(lines), "s.jsonl")

    assert error_of(path) == (
        f"{path}:3: cases[1].checks[0].regex: not a valid regular expression: "
        "missing ), unterminated subpattern at position 0"
    )


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '{"prompt": "one"}\n{prompt: two}\n', "s.jsonl")

    assert error_of(path).startswith(f"{path}:2: not valid JSON: ")


def test_an_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("    notes: anything", "    note: anything"))

    assert error_of(path) == (
        f"{path}:24: cases[2].note: unknown key; expected one of checks, id, messages, notes, "
        "parameters, prompt, system, template, tools, variables"
    )


def test_a_template_variable_without_a_value_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("{country: France}", "{land: France}"))

    assert error_of(path) == (
        f"{path}:10: cases[0].variables: no value for {{{{country}}}} of the template"
    )


def test_a_stop_reason_of_the_other_format_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("- contains: Paris", "- stop_reason: stop"))

    assert error_of(path) == (
        f"{path}:12: cases[0].checks[0].stop_reason: 'stop' is not a anthropic stop reason "
        "(end_turn, max_tokens, stop_sequence, tool_use, pause_turn, refusal)"
    )


def test_a_json_schema_that_is_no_schema_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("- contains: Paris", "- json_schema: {type: 12}"))

    assert error_of(path).startswith(
        f"{path}:12: cases[0].checks[0].json_schema: not a valid JSON Schema: 12 is not valid"
    )


def test_a_judge_without_a_model_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("judge: {model: judge}\n", ""))

    assert error_of(path) == (
        f"{path}:21: cases[1].checks[1].judge: needs a model of its own: set model here or "
        "the suite's judge.model"
    )


def test_a_cutoff_naming_no_check_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE + "cutoffs: {contain: 0.5}\n")

    assert (
        error_of(path) == f"{path}:25: cutoffs.contain: no check of the suite is called 'contain'"
    )


def test_streaming_is_not_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("{max_tokens: 10}", "{stream: true}"))

    assert error_of(path) == (
        f"{path}:19: cases[1].parameters.stream: not a parameter: the eval reads whole answers"
    )


def test_ratios_must_lie_between_0_and_1(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE + "pass_rate: 90\n")

    assert error_of(path) == f"{path}:25: pass_rate: expected a ratio between 0 and 1, got 90"


def test_two_cases_with_one_id_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("id: conversation", "id: france"))

    assert error_of(path) == f"{path}:14: cases[1].id: 'france' is the id of an earlier case"


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - prompt: [unclosed\n")

    assert error_of(path).startswith(f"{path}:3: not valid YAML: ")


def test_the_hash_ignores_layout_and_notes_but_not_what_is_checked(tmp_path: Path) -> None:
    base = load_suite(write(tmp_path, SUITE, "a.yaml")).digest
    relaid = SUITE.replace(
        "{max_tokens: 50, temperature: 0}", "\n  max_tokens: 50\n  temperature: 0"
    )
    renoted = SUITE.replace("anything for people", "something else")
    rechecked = SUITE.replace("contains: Paris", "contains: Pariss")

    assert load_suite(write(tmp_path, relaid, "b.yaml")).digest == base
    assert load_suite(write(tmp_path, renoted, "c.yaml")).digest == base
    assert load_suite(write(tmp_path, rechecked, "d.yaml")).digest != base
