"""`tollhouse eval SUITE` end to end: suites sent through the official SDKs to a gateway on
the simulator (in process from a config, or already running), costs read from its real
ledger, the gate's verdict and exit code."""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.evals.conftest import CAPITALS, EvalSetup, gateway_config

from tollhouse.cli import main
from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer, free_port


def run_eval(setup: EvalSetup, suite: Path, *options: str) -> int:
    return main(["eval", str(suite), "--config", str(setup.config_path), *options])


def report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def ledger_records(path: Path) -> list[Any]:
    async def read() -> list[Any]:
        store = SQLiteLedgerStore(path)
        try:
            return await store.query(limit=10_000)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_suite_passes_on_one_model_exit_0(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(setup, setup.suite(CAPITALS), "--model", "claude-sonnet-4-5")

    out = capsys.readouterr().out
    assert code == 0
    assert out.rstrip().splitlines()[-1] == "PASS: claude-sonnet-4-5 passed"


def test_suite_fails_on_another_model_exit_1_naming_the_failed_check(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(setup, setup.suite(CAPITALS), "--model", "claude-haiku-4-5")

    out = capsys.readouterr().out
    assert code == 1
    assert "contains: missing 'Paris' in 'The capital of France is London.'" in out
    assert out.rstrip().splitlines()[-1] == (
        "FAIL: claude-haiku-4-5 failed (pass_rate 0.50 < 1.00)"
    )


def test_the_suites_own_model_is_the_default_target(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(setup, setup.suite(CAPITALS), "--format", "json")

    doc = report(capsys)
    assert code == 0
    assert [target["label"] for target in doc["targets"]] == ["claude-sonnet-4-5"]


def test_compare_names_the_cheapest_passing_model_from_ledger_costs(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    models = ["claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-4-5"]
    options = [f"--model={model}" for model in models]
    code = run_eval(setup, setup.suite(CAPITALS), *options, "--require", "any", "--format", "json")

    doc = report(capsys)
    by_model: dict[str, list[Decimal]] = defaultdict(list)
    for record in ledger_records(setup.ledger_path):
        by_model[record.route].append(record.cost_usd)
    targets = {target["label"]: target for target in doc["targets"]}
    for model in models:  # each figure is the ledger's own mean cost of the model's calls
        expected = sum(by_model[model], Decimal(0)) / len(by_model[model])
        assert Decimal(targets[model]["cost_per_case_usd"]) == expected
    cheapest_overall = min(models, key=lambda m: Decimal(targets[m]["cost_per_case_usd"]))
    assert cheapest_overall == "claude-haiku-4-5"  # cheapest, but it fails
    assert [targets[m]["passed"] for m in models] == [False, True, True]
    assert code == 0
    assert doc["verdict"]["cheapest_passing"] == "claude-sonnet-4-5"
    assert "cheapest passing: claude-sonnet-4-5" in doc["verdict"]["summary"]


def test_compare_with_require_all_fails_when_one_target_fails(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(
        setup, setup.suite(CAPITALS), "--model", "claude-sonnet-4-5", "--model", "claude-haiku-4-5"
    )

    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert code == 1
    assert last.startswith("FAIL: claude-sonnet-4-5 passed; claude-haiku-4-5 failed")
    assert re.search(r"; cheapest passing: claude-sonnet-4-5 \(\$0\.[0-9]+ per case\)$", last)


def test_cutoffs_decide_the_exit_code(setup: EvalSetup, capsys: pytest.CaptureFixture[str]) -> None:
    suite = setup.suite(CAPITALS)

    relaxed = run_eval(setup, suite, "--model", "claude-haiku-4-5", "--cutoffs", "pass_rate=0.5")
    assert capsys.readouterr().out.rstrip().endswith("PASS: claude-haiku-4-5 passed")
    tightened = run_eval(
        setup, suite, "--model", "claude-haiku-4-5", "--cutoffs", "pass_rate=0.5,contains=1"
    )
    assert "contains 0.00 < 1.00" in capsys.readouterr().out

    assert (relaxed, tightened) == (0, 1)


def test_suite_level_pass_rate_and_cutoffs_are_the_gate(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = setup.suite({**CAPITALS, "pass_rate": 0.5, "cutoffs": {"regex": 1.0}})

    code = run_eval(setup, suite, "--model", "claude-haiku-4-5", "--format", "json")

    doc = report(capsys)
    cutoffs = {c["name"]: c for c in doc["targets"][0]["cutoffs"]}
    assert code == 0
    assert cutoffs["pass_rate"] == {
        "name": "pass_rate",
        "required": 0.5,
        "actual": 0.5,
        "holds": True,
    }
    assert cutoffs["regex"]["holds"] is True


def test_junit_report_parses_with_a_failure_per_failed_case_and_cutoff(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = setup.directory / "results.xml"
    code = run_eval(
        setup,
        setup.suite(CAPITALS),
        "--model=claude-sonnet-4-5",
        "--model=claude-haiku-4-5",
        "--format=junit",
        f"--output={junit}",
    )

    root = ElementTree.parse(junit).getroot()
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    failing = suites["capitals [claude-haiku-4-5]"]
    failures = {case.get("name"): case.find("failure") for case in failing.iter("testcase")}
    assert code == 1
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("6", "2")
    assert suites["capitals [claude-sonnet-4-5]"].get("failures") == "0"
    assert failing.get("tests") == "3"
    assert failures["spain"] is None
    france = failures["france"]
    assert france is not None
    assert france.get("message", "").startswith("contains: missing 'Paris'")
    cutoff = failures["cutoff pass_rate"]
    assert cutoff is not None
    assert cutoff.get("message") == "pass_rate 0.5000 < 1.0000"
    properties = {p.get("name"): p.get("value") for p in failing.iter("property")}
    assert properties["suite_hash"]
    assert properties["pass_rate"] == "0.5000"
    assert "FAIL: claude-sonnet-4-5 passed; claude-haiku-4-5 failed" in capsys.readouterr().err


def test_judge_grades_with_its_own_model_and_its_cost_is_counted(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = setup.suite(
        {
            "api": "anthropic",
            "judge": {"model": "judge"},
            "cases": [
                {
                    "id": "france",
                    "prompt": "What is the capital of France?",
                    "checks": [{"judge": "Names Paris as the capital of France."}],
                }
            ],
        }
    )

    code = run_eval(
        setup,
        suite,
        "--model=claude-sonnet-4-5",
        "--model=claude-haiku-4-5",
        "--format=json",
        "--require=any",
    )

    doc = report(capsys)
    targets = {target["label"]: target for target in doc["targets"]}
    judged = [r for r in ledger_records(setup.ledger_path) if r.route == "judge"]
    assert code == 0
    assert targets["claude-sonnet-4-5"]["checks"]["judge"]["ratio"] == 1.0
    wrong = targets["claude-haiku-4-5"]["case_runs"][0]["checks"][0]
    assert wrong == {
        "name": "judge",
        "kind": "judge",
        "passed": False,
        "detail": "judge judge: FAIL: It does not name Paris.",
    }
    assert len(judged) == 2  # one grading per answer, on the judge's own route
    judge_costs = sum((Decimal(t["judge_cost_usd"]) for t in targets.values()), Decimal(0))
    assert judge_costs == sum((r.cost_usd for r in judged), Decimal(0)) > 0


def test_a_judge_whose_call_fails_makes_the_run_an_error_not_a_failed_check(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = setup.suite(
        {
            "api": "anthropic",
            "judge": {"model": "no-such-judge"},
            "cutoffs": {"judge": 0.0},  # the grade alone could never fail the run
            "pass_rate": 0.0,
            "cases": [
                {
                    "id": "france",
                    "prompt": "What is the capital of France?",
                    "checks": [{"judge": "Names Paris as the capital of France."}],
                }
            ],
        }
    )

    code = run_eval(setup, suite, "--model=claude-sonnet-4-5", "--format=json")

    doc = report(capsys)
    assert code == 2
    assert doc["verdict"]["exit_code"] == 2
    assert doc["verdict"]["passed"] is False
    summary = doc["verdict"]["summary"]
    assert summary.startswith("ERROR: the run could not be judged whole: the judge of case ")
    assert "france on claude-sonnet-4-5 failed" in summary


def test_openai_suite_checks_tool_calls_json_and_stop_reason_through_the_openai_sdk(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    answer_schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    suite = setup.suite(
        {
            "api": "openai",
            "model": "gpt-4o-mini",
            "cases": [
                {
                    "id": "weather",
                    "prompt": "What is the weather in Paris?",
                    "tools": [weather],
                    "parameters": {"tool_choice": "required"},
                    "checks": [
                        {
                            "tool_call": {
                                "name": "get_weather",
                                "input_schema": weather["function"]["parameters"],
                            }
                        },
                        {"stop_reason": "tool_calls"},
                    ],
                },
                {
                    "id": "structured",
                    "prompt": "Answer in JSON.",
                    "parameters": {
                        "response_format": {
                            "type": "json_schema",
                            "json_schema": {"name": "a", "schema": answer_schema},
                        }
                    },
                    "checks": [{"json_schema": answer_schema}, {"stop_reason": "stop"}],
                },
                {
                    "id": "wrong tool",
                    "prompt": "What is the weather in Paris?",
                    "tools": [weather],
                    "parameters": {"tool_choice": "required"},
                    "checks": [{"tool_call": "book_flight"}],
                },
            ],
        }
    )

    code = run_eval(setup, suite, "--format=json")

    runs = {run["case"]: run for run in report(capsys)["targets"][0]["case_runs"]}
    assert code == 1
    assert runs["weather"]["passed"]
    assert runs["structured"]["passed"]
    assert runs["wrong tool"]["checks"][0]["detail"] == (
        "no call to 'book_flight' (calls: ['get_weather'])"
    )


def test_repeat_runs_every_case_n_times_and_reports_the_spread(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(
        setup,
        setup.suite(CAPITALS),
        "--model=claude-haiku-4-5",
        "--repeat=3",
        "--cutoffs=pass_rate=0.5",
        "--format=json",
    )

    target = report(capsys)["targets"][0]
    assert code == 0
    assert target["runs"] == 6
    assert len(target["case_runs"]) == 6
    assert target["pass_rate_by_round"] == [0.5, 0.5, 0.5]
    assert target["pass_rate_spread"] == {"min": 0.5, "max": 0.5, "stdev": 0.0}
    assert target["flaky_cases"] == []  # the seeded simulator answers the same each round
    assert len(ledger_records(setup.ledger_path)) == 6


def test_max_cost_and_latency_checks_use_the_ledger_and_the_clients_clock(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = setup.suite(
        {
            "model": "claude-sonnet-4-5",
            "cases": [
                {
                    "id": "cheap enough",
                    "prompt": "What is the capital of France?",
                    "checks": [{"max_cost_usd": 1}, {"max_latency_ms": 60000}],
                },
                {
                    "id": "too dear",
                    "prompt": "What is the capital of France?",
                    "checks": [{"max_cost_usd": "0.0000001"}],
                },
            ],
        }
    )

    code = run_eval(setup, suite, "--format=json")

    runs = {run["case"]: run for run in report(capsys)["targets"][0]["case_runs"]}
    recorded = {r.request_id: r.cost_usd for r in ledger_records(setup.ledger_path)}
    dear = runs["too dear"]
    assert code == 1
    assert runs["cheap enough"]["passed"]
    assert dear["checks"][0]["detail"] == (f"cost ${recorded[dear['request_id']]:f} > $0.0000001")


def test_a_running_gateway_by_base_url_with_its_ledger_file(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = Gateway(parse_config(setup.config))
    with BackgroundServer(create_app(gateway)) as server:
        code = main(
            [
                "eval",
                str(setup.suite(CAPITALS)),
                "--base-url",
                server.url,
                "--sqlite",
                str(setup.ledger_path),
                "--model=claude-sonnet-4-5",
                "--model=claude-haiku-4-5",
                "--require=any",
            ]
        )

    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert code == 0
    assert re.fullmatch(
        r"PASS: claude-sonnet-4-5 passed; claude-haiku-4-5 failed \(pass_rate 0\.50 < 1\.00\); "
        r"cheapest passing: claude-sonnet-4-5 \(\$0\.[0-9]+ per case\)",
        last,
    )


def test_an_unreachable_gateway_exits_2(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    code = main(["eval", str(setup.suite(CAPITALS)), "--base-url", url, "--no-store"])

    assert code == 2
    assert capsys.readouterr().err.startswith(f"tollhouse eval: {url}: Connection ")


def test_cost_checks_without_a_ledger_exit_2_before_any_call(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOLLHOUSE_ADMIN_TOKEN", raising=False)
    suite = setup.suite({**CAPITALS, "cases": [{"prompt": "hi", "checks": [{"max_cost_usd": 1}]}]})

    code = main(["eval", str(suite), "--base-url", "http://127.0.0.1:9", "--no-store"])

    assert code == 2
    assert capsys.readouterr().err == (
        "tollhouse eval: costs come from the gateway's ledger: pass --config, --sqlite, "
        "--postgres or --admin-token\n"
    )


def test_a_bad_suite_exits_2_naming_its_line_and_key(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = setup.suite(
        "model: claude-sonnet-4-5\ncases:\n  - prompt: hi\n    checks:\n      - containz: x\n"
    )

    code = run_eval(setup, suite)

    assert code == 2
    assert capsys.readouterr().err == (
        f"tollhouse eval: {suite}:5: cases[0].checks[0].containz: unknown check; expected one "
        "of contains, not_contains, regex, exact, json_schema, tool_call, stop_reason, "
        "max_cost_usd, max_latency_ms, judge\n"
    )


def test_a_cutoff_naming_no_check_exits_2(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(setup, setup.suite(CAPITALS), "--cutoffs", "judge=0.9")

    assert code == 2
    assert "--cutoffs: no check of the suite is called 'judge'" in capsys.readouterr().err


def test_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])

    out = capsys.readouterr().out
    assert "exit codes: 0 every cutoff holds; 1 a cutoff fails; 2 the eval could not be run" in (
        " ".join(out.split())
    )


def test_a_variant_the_gateway_did_not_serve_fails_its_cases(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(setup, setup.suite(CAPITALS), "--variant", "candidate", "--format", "json")

    target = report(capsys)["targets"][0]
    assert code == 1
    assert (target["label"], target["model"], target["variant"]) == (
        "candidate",
        "claude-sonnet-4-5",
        "candidate",
    )
    # The gateway refuses to serve a variant its route does not have (400), so no case
    # can pass on another variant's answer.
    errors = [run["error"] for run in target["case_runs"]]
    assert errors
    assert all(
        "route 'claude-sonnet-4-5' has no variants (asked for 'candidate')" in error
        for error in errors
    )


def test_a_running_gateway_gives_costs_through_its_admin_api(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = Gateway(parse_config(setup.config))
    with BackgroundServer(create_app(gateway, admin_token="th-admin")) as server:
        code = main(
            [
                "eval",
                str(setup.suite(CAPITALS)),
                f"--base-url={server.url}",
                "--admin-token=th-admin",
                "--model=claude-sonnet-4-5",
                "--model=claude-opus-4-1",
                "--format=json",
                "--no-store",
            ]
        )
        doc = report(capsys)

    recorded = {r.request_id: r.cost_usd for r in ledger_records(setup.ledger_path)}
    costs = {
        run["request_id"]: Decimal(run["cost_usd"])
        for target in doc["targets"]
        for run in target["case_runs"]
    }
    assert code == 0
    assert costs == recorded
    assert doc["verdict"]["cheapest_passing"] == "claude-sonnet-4-5"


def test_a_suite_passes_on_one_variant_and_fails_on_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = gateway_config(tmp_path)
    config["models"]["support"] = {
        "deployments": [{"provider": "sim-right", "model": "claude-sonnet-4-5-20250929"}],
        "variants": {
            "control": {"weight": 100},
            "candidate": {"weight": 0, "model": "claude-haiku-4-5"},  # answers wrong
        },
    }
    setup = EvalSetup(tmp_path, tmp_path / "gateway.yaml", config)
    setup.config_path.write_text(json.dumps(config))
    suite = setup.suite({**CAPITALS, "model": "support"})

    control = run_eval(setup, suite, "--variant", "control")
    capsys.readouterr()
    candidate = run_eval(setup, suite, "--variant", "candidate")
    assert "FAIL: candidate failed (pass_rate 0.50 < 1.00)" in capsys.readouterr().out
    both = run_eval(setup, suite, "--variant=control", "--variant=candidate", "--format=json")

    doc = report(capsys)
    served = {r.request_id: r.variant for r in ledger_records(setup.ledger_path)}
    assert (control, candidate, both) == (0, 1, 1)
    for target in doc["targets"]:
        assert target["served_variants"] == [target["label"]]
        assert {served[run["request_id"]] for run in target["case_runs"]} == {target["label"]}
    assert doc["verdict"]["cheapest_passing"] == "control"
