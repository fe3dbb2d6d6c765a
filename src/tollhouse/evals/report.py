"""An eval's results as text: `table` for a person, `json` for a program, `junit` (JUnit
XML, one testsuite per target, one testcase per case run and per cutoff) for any CI.

Each ends with, or holds, the verdict of gate.py, so what is printed is what the exit
code says.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import orjson

from tollhouse.commands import table
from tollhouse.evals.gate import TargetVerdict, Verdict
from tollhouse.evals.runner import CaseRun
from tollhouse.evals.suite import Suite

ReportFormat = Literal["table", "json", "junit"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("table", "json", "junit")


def render(
    fmt: ReportFormat, suite: Suite, runs: Sequence[CaseRun], verdict: Verdict, repeat: int
) -> str:
    if fmt == "json":
        return orjson.dumps(
            as_json(suite, runs, verdict, repeat), option=orjson.OPT_INDENT_2
        ).decode()
    if fmt == "junit":
        return as_junit(suite, runs, verdict)
    return as_table(suite, runs, verdict, repeat)


def as_table(suite: Suite, runs: Sequence[CaseRun], verdict: Verdict, repeat: int) -> str:
    targets = verdict.targets
    rounds = f" x {repeat} rounds" if repeat > 1 else ""
    lines = [
        f"suite {suite.name} ({suite.digest[:12]}): {len(suite.cases)} cases{rounds} on "
        f"{len(targets)} target{'s' if len(targets) > 1 else ''}",
        "",
        table(
            ["target", "case", "passed", "cost $", "ms", "failed checks"],
            _case_rows(runs, targets),
            right={2, 3, 4},
        ),
        "",
        table(
            ["target", "check", "passed", "ratio", "cutoff", "holds"],
            _check_rows(targets),
            right={2, 3, 4},
        ),
        "",
        table(
            [
                "target",
                "pass rate",
                "round spread",
                "cost/case $",
                "judge $",
                "p50 ms",
                "p95 ms",
                "verdict",
            ],
            [_target_row(target) for target in targets],
            right={1, 3, 4, 5, 6},
        ),
        "",
        verdict.summary(),
    ]
    return "\n".join(lines)


def _case_rows(runs: Sequence[CaseRun], targets: Sequence[TargetVerdict]) -> list[list[str]]:
    rows = []
    for target in targets:
        mine = [run for run in runs if run.target == target.figures.target]
        for case_id in dict.fromkeys(run.case.id for run in mine):
            of_case = [run for run in mine if run.case.id == case_id]
            failures = [
                f"{result.name}: {result.detail}"
                for run in of_case
                for result in run.results
                if not result.passed
            ]
            if not failures:
                failures = [f"call: {run.answer.error}" for run in of_case if run.answer.error]
            costs = [run.cost_usd for run in of_case if run.cost_usd is not None]
            latency = sum(run.answer.latency_ms for run in of_case) / len(of_case)
            rows.append(
                [
                    target.figures.target.label,
                    case_id,
                    f"{sum(run.passed for run in of_case)}/{len(of_case)}",
                    _money(sum(costs, Decimal(0)) / len(costs) if costs else None),
                    f"{latency:,.0f}",
                    _first(failures),
                ]
            )
    return rows


def _check_rows(targets: Sequence[TargetVerdict]) -> list[list[str]]:
    rows = []
    for target in targets:
        cutoffs = {cutoff.name: cutoff for cutoff in target.cutoffs}
        figures = target.figures
        label = figures.target.label
        for name, check in figures.checks.items():
            cutoff = cutoffs.get(name)
            rows.append(
                [
                    label,
                    name,
                    f"{check.passed}/{check.total}",
                    f"{check.ratio:.2f}",
                    f"{cutoff.required:.2f}" if cutoff else "-",
                    ("yes" if cutoff.holds else "NO") if cutoff else "-",
                ]
            )
        overall = cutoffs["pass_rate"]
        rows.append(
            [
                label,
                "pass_rate (every check)",
                f"{figures.passed_runs}/{figures.runs}",
                f"{figures.pass_rate:.2f}",
                f"{overall.required:.2f}",
                "yes" if overall.holds else "NO",
            ]
        )
    return rows


def _target_row(target: TargetVerdict) -> list[str]:
    figures = target.figures
    low, high, deviation = figures.pass_rate_spread
    spread = (
        "-" if len(figures.pass_rate_by_round) < 2 else f"{low:.2f}-{high:.2f} ±{deviation:.2f}"
    )
    return [
        figures.target.label,
        f"{figures.pass_rate:.2f}",
        spread,
        _money(figures.cost_per_case_usd),
        _money(figures.judge_cost_usd) if figures.judge_cost_usd else "-",
        _ms(figures.latency_p50_ms),
        _ms(figures.latency_p95_ms),
        "pass" if target.passed else "FAIL",
    ]


def as_json(suite: Suite, runs: Sequence[CaseRun], verdict: Verdict, repeat: int) -> dict[str, Any]:
    cheapest = verdict.cheapest_passing
    return {
        "suite": {"name": suite.name, "path": suite.path, "hash": suite.digest},
        "repeat": repeat,
        "require": verdict.require,
        "targets": [_target_json(target, runs) for target in verdict.targets],
        "verdict": {
            "passed": verdict.passed,
            "exit_code": verdict.exit_code,
            "cheapest_passing": cheapest.figures.target.label if cheapest else None,
            "summary": verdict.summary(),
        },
    }


def _target_json(target: TargetVerdict, runs: Sequence[CaseRun]) -> dict[str, Any]:
    figures = target.figures
    low, high, deviation = figures.pass_rate_spread
    return {
        "label": figures.target.label,
        "model": figures.target.model,
        "variant": figures.target.variant,
        "passed": target.passed,
        "runs": figures.runs,
        "passed_runs": figures.passed_runs,
        "pass_rate": figures.pass_rate,
        "pass_rate_by_round": list(figures.pass_rate_by_round),
        "pass_rate_spread": {"min": low, "max": high, "stdev": deviation},
        "flaky_cases": list(figures.flaky_cases),
        "checks": {
            name: {"passed": check.passed, "total": check.total, "ratio": check.ratio}
            for name, check in figures.checks.items()
        },
        "cutoffs": [
            {"name": c.name, "required": c.required, "actual": c.actual, "holds": c.holds}
            for c in target.cutoffs
        ],
        "cost_per_case_usd": _decimal(figures.cost_per_case_usd),
        "calls_cost_usd": _decimal(figures.calls_cost_usd),
        "judge_cost_usd": _decimal(figures.judge_cost_usd),
        "unpriced_runs": figures.unpriced_runs,
        "latency_p50_ms": figures.latency_p50_ms,
        "latency_p95_ms": figures.latency_p95_ms,
        "config_versions": list(figures.config_versions),
        "served_variants": list(figures.served_variants),
        "case_runs": [
            {
                "case": run.case.id,
                "round": run.repeat + 1,
                "passed": run.passed,
                "request_id": run.answer.request_id,
                "cost_usd": _decimal(run.cost_usd),
                "judge_cost_usd": _decimal(run.judge_cost_usd),
                "latency_ms": run.answer.latency_ms,
                "error": run.answer.error,
                "checks": [
                    {"name": r.name, "kind": r.kind, "passed": r.passed, "detail": r.detail}
                    for r in run.results
                ],
            }
            for run in runs
            if run.target == figures.target
        ],
    }


def as_junit(suite: Suite, runs: Sequence[CaseRun], verdict: Verdict) -> str:
    root = ElementTree.Element("testsuites", name=f"tollhouse eval {suite.name}")
    all_tests = all_failures = 0
    for target in verdict.targets:
        figures = target.figures
        label = figures.target.label
        element = ElementTree.SubElement(root, "testsuite", name=f"{suite.name} [{label}]")
        properties = ElementTree.SubElement(element, "properties")
        for name, value in (
            ("suite_hash", suite.digest),
            ("model", figures.target.model),
            ("variant", figures.target.variant or ""),
            ("pass_rate", f"{figures.pass_rate:.4f}"),
            ("cost_per_case_usd", _decimal(figures.cost_per_case_usd) or ""),
            ("latency_p50_ms", _ms(figures.latency_p50_ms)),
            ("latency_p95_ms", _ms(figures.latency_p95_ms)),
        ):
            ElementTree.SubElement(properties, "property", name=name, value=value)
        tests = failures = 0
        seconds = 0.0
        classname = f"{suite.name}.{label}"
        for run in (run for run in runs if run.target == figures.target):
            tests += 1
            seconds += run.answer.latency_ms / 1000
            name = run.case.id if run.repeat == 0 else f"{run.case.id} (round {run.repeat + 1})"
            case = ElementTree.SubElement(
                element,
                "testcase",
                classname=classname,
                name=name,
                time=f"{run.answer.latency_ms / 1000:.3f}",
            )
            if not run.passed:
                failures += 1
                failed = [f"{r.name}: {r.detail}" for r in run.results if not r.passed]
                if run.answer.error and not failed:
                    failed = [f"call: {run.answer.error}"]
                failure = ElementTree.SubElement(
                    case, "failure", message=_first(failed), type="check"
                )
                failure.text = "\n".join(failed)
        for cutoff in target.cutoffs:
            tests += 1
            case = ElementTree.SubElement(
                element, "testcase", classname=classname, name=f"cutoff {cutoff.name}", time="0"
            )
            if not cutoff.holds:
                failures += 1
                ElementTree.SubElement(
                    case,
                    "failure",
                    message=f"{cutoff.name} {cutoff.actual:.4f} < {cutoff.required:.4f}",
                    type="cutoff",
                )
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("time", f"{seconds:.3f}")
        all_tests += tests
        all_failures += failures
    root.set("tests", str(all_tests))
    root.set("failures", str(all_failures))
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _first(failures: Sequence[str]) -> str:
    if not failures:
        return ""
    more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
    return failures[0][:160] + more


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else f"{value:.6f}"


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
