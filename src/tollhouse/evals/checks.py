"""Each check of a case judged against what came back: pure functions of the answer, its
cost from the ledger and, for `judge`, the judge's verdict (both gathered by the runner).

A call that failed (`Answer.error`) fails every check of its case, with the error as the
reason: an error is never a pass, not even of `not_contains`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tollhouse.evals.clients import Answer
from tollhouse.evals.judge import Verdict
from tollhouse.evals.suite import Check, ToolCallSpec

_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n\s*```\s*\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    kind: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Observed:
    """What a check may look at: the answer, its cost (None: unknown or unpriced, with
    `cost_note` saying which) and the judge's verdict for a `judge` check."""

    answer: Answer
    cost_usd: Decimal | None = None
    cost_note: str = ""
    verdict: Verdict | None = None


def evaluate(check: Check, observed: Observed) -> CheckResult:
    answer = observed.answer
    if answer.error is not None:
        return CheckResult(check.name, check.kind, False, f"the call failed: {answer.error}")
    passed, detail = _JUDGES[check.kind](check, observed)
    return CheckResult(check.name, check.kind, passed, "" if passed else detail)


def _contains(check: Check, observed: Observed) -> tuple[bool, str]:
    text = _folded(observed.answer.text, check.ignore_case)
    missing = [t for t in check.value if _folded(t, check.ignore_case) not in text]
    return not missing, f"missing {', '.join(map(repr, missing))} in {_excerpt(observed)}"


def _not_contains(check: Check, observed: Observed) -> tuple[bool, str]:
    text = _folded(observed.answer.text, check.ignore_case)
    found = [t for t in check.value if _folded(t, check.ignore_case) in text]
    return not found, f"found {', '.join(map(repr, found))} in {_excerpt(observed)}"


def _regex(check: Check, observed: Observed) -> tuple[bool, str]:
    pattern: re.Pattern[str] = check.value
    found = pattern.search(observed.answer.text) is not None
    return found, f"no match for /{pattern.pattern}/ in {_excerpt(observed)}"


def _exact(check: Check, observed: Observed) -> tuple[bool, str]:
    want = _folded(check.value.strip(), check.ignore_case)
    same = _folded(observed.answer.text.strip(), check.ignore_case) == want
    return same, f"expected {check.value.strip()!r}, got {_excerpt(observed)}"


def _json_schema(check: Check, observed: Observed) -> tuple[bool, str]:
    text = observed.answer.text
    fenced = _FENCE.match(text)
    try:
        value = json.loads(fenced.group("body") if fenced else text)
    except json.JSONDecodeError as error:
        return False, f"not JSON ({error.msg} at {error.pos}): {_excerpt(observed)}"
    problem = _schema_problem(check.value, value)
    return problem is None, f"does not match the schema: {problem}"


def _tool_call(check: Check, observed: Observed) -> tuple[bool, str]:
    spec: ToolCallSpec = check.value
    calls = [call for call in observed.answer.tool_calls if call.name == spec.name]
    if not calls:
        made = [call.name for call in observed.answer.tool_calls]
        return False, f"no call to {spec.name!r} (calls: {made or 'none'})"
    if spec.input_schema is None:
        return True, ""
    problems = []
    for call in calls:
        if call.input is None:
            problems.append("input is not JSON")
            continue
        problem = _schema_problem(spec.input_schema, call.input)
        if problem is None:
            return True, ""
        problems.append(problem)
    return False, f"{spec.name} input does not match the schema: {problems[0]}"


def _stop_reason(check: Check, observed: Observed) -> tuple[bool, str]:
    got = observed.answer.stop_reason
    return got == check.value, f"expected {check.value}, got {got}"


def _max_cost(check: Check, observed: Observed) -> tuple[bool, str]:
    if observed.cost_usd is None:
        return False, f"cost unknown: {observed.cost_note or 'no ledger record'}"
    limit: Decimal = check.value
    return observed.cost_usd <= limit, f"cost ${observed.cost_usd:f} > ${limit:f}"


def _max_latency(check: Check, observed: Observed) -> tuple[bool, str]:
    took = observed.answer.latency_ms
    return took <= check.value, f"took {took:.0f} ms > {check.value:.0f} ms"


def _judge(check: Check, observed: Observed) -> tuple[bool, str]:
    verdict = observed.verdict
    if verdict is None or verdict.passed is None:
        return False, verdict.reason if verdict else "not judged"
    return verdict.passed, f"judge {check.value.model}: FAIL: {verdict.reason}"


_JUDGES = {
    "contains": _contains,
    "not_contains": _not_contains,
    "regex": _regex,
    "exact": _exact,
    "json_schema": _json_schema,
    "tool_call": _tool_call,
    "stop_reason": _stop_reason,
    "max_cost_usd": _max_cost,
    "max_latency_ms": _max_latency,
    "judge": _judge,
}


def _schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    from jsonschema import Draft202012Validator

    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    if error is None:
        return None
    where = "".join(f"[{part!r}]" for part in error.absolute_path) or "the value"
    return f"{where}: {error.message}"


def _folded(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _excerpt(observed: Observed, limit: int = 80) -> str:
    text = observed.answer.text
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
