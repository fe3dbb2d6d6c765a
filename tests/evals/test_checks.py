"""Each check judged against an answer, the judge's verdict read, the gate's arithmetic and
the progress bar: the pure parts of the eval runner."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from tollhouse.evals.checks import CheckResult, Observed, evaluate
from tollhouse.evals.clients import Answer, ToolUse
from tollhouse.evals.gate import parse_cutoffs
from tollhouse.evals.judge import read_verdict
from tollhouse.evals.progress import Progress
from tollhouse.evals.runner import targets_for
from tollhouse.evals.suite import Check, parse_suite


def check(spec: dict[str, Any], api: str = "anthropic") -> Check:
    suite = parse_suite(
        {"api": api, "judge": {"model": "judge"}, "cases": [{"prompt": "q", "checks": [spec]}]}
    )
    return suite.cases[0].checks[0]


def judged(spec: dict[str, Any], answer: Answer, **observed: Any) -> CheckResult:
    return evaluate(check(spec), Observed(answer=answer, **observed))


def test_contains_needs_every_string_and_can_ignore_case() -> None:
    answer = Answer(text="Paris is the capital of France")

    assert judged({"contains": ["Paris", "France"]}, answer).passed
    missing = judged({"contains": ["Paris", "Lyon"]}, answer)
    assert missing.detail == "missing 'Lyon' in 'Paris is the capital of France'"
    assert not judged({"contains": "paris"}, answer).passed
    assert judged({"contains": "paris", "ignore_case": True}, answer).passed


def test_not_contains_fails_on_any_of_its_strings() -> None:
    result = judged({"not_contains": ["London", "Paris"]}, Answer(text="Paris."))

    assert (result.passed, result.detail) == (False, "found 'Paris' in 'Paris.'")


def test_regex_searches_the_text() -> None:
    assert judged({"regex": r"\bParis\b"}, Answer(text="It is Paris.")).passed
    assert not judged({"regex": r"^Paris$"}, Answer(text="It is Paris.")).passed


def test_exact_ignores_surrounding_whitespace_only() -> None:
    assert judged({"exact": "Paris"}, Answer(text="  Paris\n")).passed
    assert not judged({"exact": "Paris"}, Answer(text="Paris.")).passed
    assert judged({"exact": "PARIS", "ignore_case": True}, Answer(text="paris")).passed


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_json_schema_parses_the_answer_fenced_or_not_and_validates_it() -> None:
    assert judged({"json_schema": SCHEMA}, Answer(text='{"n": 3}')).passed
    assert judged({"json_schema": SCHEMA}, Answer(text='```json\n{"n": 3}\n```')).passed
    wrong = judged({"json_schema": SCHEMA}, Answer(text='{"n": "3"}'))
    assert wrong.detail == "does not match the schema: ['n']: '3' is not of type 'integer'"
    prose = judged({"json_schema": SCHEMA}, Answer(text="three"))
    assert prose.detail.startswith("not JSON (Expecting value at 0): 'three'")


def test_tool_call_needs_the_named_tool_with_input_matching_its_schema() -> None:
    spec = {"tool_call": {"name": "count", "input_schema": SCHEMA}}
    good = Answer(tool_calls=[ToolUse("other", {}), ToolUse("count", {"n": 1})])
    bad_input = Answer(tool_calls=[ToolUse("count", {"n": "one"})])
    cut = Answer(tool_calls=[ToolUse("count", None)])

    assert judged(spec, good).passed
    assert judged(spec, bad_input).detail == (
        "count input does not match the schema: ['n']: 'one' is not of type 'integer'"
    )
    assert judged(spec, cut).detail == "count input does not match the schema: input is not JSON"
    assert judged({"tool_call": "count"}, Answer()).detail == "no call to 'count' (calls: none)"


def test_stop_reason_compares_the_formats_own_value() -> None:
    assert judged({"stop_reason": "max_tokens"}, Answer(stop_reason="max_tokens")).passed
    result = evaluate(
        check({"stop_reason": "length"}, "openai"), Observed(Answer(stop_reason="stop"))
    )
    assert result.detail == "expected length, got stop"


def test_max_cost_fails_when_the_cost_is_unknown() -> None:
    spec = {"max_cost_usd": "0.001"}

    assert judged(spec, Answer(), cost_usd=Decimal("0.001")).passed
    assert judged(spec, Answer(), cost_usd=Decimal("0.0011")).detail == "cost $0.0011 > $0.001"
    unknown = judged(spec, Answer(), cost_note="the model has no price in the catalog")
    assert unknown.detail == "cost unknown: the model has no price in the catalog"


def test_max_latency_uses_the_clients_wall_time() -> None:
    assert judged({"max_latency_ms": 100}, Answer(latency_ms=99.0)).passed
    assert judged({"max_latency_ms": 100}, Answer(latency_ms=250.4)).detail == (
        "took 250 ms > 100 ms"
    )


def test_a_failed_call_fails_every_check_even_not_contains() -> None:
    failed = Answer(status=400, error="400: max_tokens: too large")

    result = judged({"not_contains": "London"}, failed)

    assert (result.passed, result.detail) == (False, "the call failed: 400: max_tokens: too large")


def test_the_judges_verdict_is_its_first_pass_or_fail() -> None:
    assert read_verdict(Answer(text="PASS\nIt names Paris.")).passed is True
    verdict = read_verdict(Answer(text="Verdict: fail - it says London."))
    assert (verdict.passed, verdict.reason) == (False, "it says London.")
    assert read_verdict(Answer(text="Maybe?")).passed is None
    assert read_verdict(Answer(error="500: boom")).reason == "the judge's call failed: 500: boom"


def test_a_judge_check_without_a_verdict_fails() -> None:
    result = judged({"judge": "Names Paris"}, Answer(text="Paris"))

    assert (result.passed, result.detail) == (False, "not judged")


def test_cutoffs_are_name_ratio_pairs() -> None:
    assert parse_cutoffs("pass_rate=0.9, contains=1") == {"pass_rate": 0.9, "contains": 1.0}
    with pytest.raises(ValueError, match="expected name=ratio with a ratio from 0 to 1"):
        parse_cutoffs("contains=1.5")
    with pytest.raises(ValueError, match="got 'contains'"):
        parse_cutoffs("contains")


def test_variants_are_of_the_suites_route_and_models_stand_alone() -> None:
    suite = parse_suite({"model": "support", "cases": [{"prompt": "q"}]})

    targets = targets_for(suite, ["claude-haiku-4-5"], ["control", "candidate"])

    assert [(t.label, t.model, t.variant) for t in targets] == [
        ("claude-haiku-4-5", "claude-haiku-4-5", None),
        ("control", "support", "control"),
        ("candidate", "support", "candidate"),
    ]
    with pytest.raises(ValueError, match="a target is named twice"):
        targets_for(suite, ["x", "x"], [])


def test_the_progress_bar_redraws_one_line_and_ends_it() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream=stream, enabled=True)

    progress.advance()
    progress.advance(error=True)
    progress.close()

    drawn = stream.getvalue()
    assert drawn.startswith("\r[" + "#" * 15 + "-" * 15 + "] 1/2 case runs, 0 call errors")
    assert drawn.endswith("\r[" + "#" * 30 + "] 2/2 case runs, 1 call errors\n")


def test_the_progress_bar_stays_silent_when_not_enabled() -> None:
    stream = io.StringIO()
    progress = Progress(3, stream=stream)  # a StringIO is no terminal

    progress.advance()
    progress.close()

    assert (stream.getvalue(), progress.done) == ("", 1)
