"""`tollhouse eval capture`: a starting suite from the ledger's calls of one route whose
(redacted) text was kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from tests.evals.conftest import gateway_config

from tollhouse.cli import main
from tollhouse.config import parse_config
from tollhouse.evals.capture import parse_prompt_text
from tollhouse.evals.suite import load_suite
from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer


def serve_traffic(directory: Path, text: str, calls: list[dict[str, Any]]) -> Path:
    """Sends `calls` through the Anthropic SDK to a gateway whose ledger keeps `text`;
    the gateway's config file, once it has stopped (its ledger drained)."""
    config = gateway_config(directory, ledger={"text": text})
    path = directory / "gateway.yaml"
    path.write_text(json.dumps(config))
    with BackgroundServer(create_app(Gateway(parse_config(config)))) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="any", max_retries=0)
        for call in calls:
            client.messages.create(max_tokens=100, **call)
    return path


FRANCE = {"role": "user", "content": "What is the capital of France? Mail me at ann@example.com"}
SPAIN = {"role": "user", "content": "What is the capital of Spain?"}


def test_capture_writes_a_suite_of_the_routes_distinct_prompts_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = serve_traffic(
        tmp_path,
        "redacted",
        [
            {"model": "claude-sonnet-4-5", "system": "Be brief.", "messages": [FRANCE]},
            {"model": "claude-sonnet-4-5", "system": "Be brief.", "messages": [FRANCE]},
            {
                "model": "claude-sonnet-4-5",
                "messages": [SPAIN, {"role": "assistant", "content": "Madrid."}, SPAIN],
            },
            {"model": "claude-haiku-4-5", "messages": [SPAIN]},
        ],
    )

    code = main(
        ["eval", "capture", "--config", str(config), "--route", "claude-sonnet-4-5", "-n", "10"]
    )

    text = capsys.readouterr().out
    suite_path = tmp_path / "captured.yaml"
    suite_path.write_text(text)
    suite = load_suite(suite_path)
    doc = yaml.safe_load(text)
    assert code == 0
    assert text.startswith("# Captured by `tollhouse eval capture` from 2 calls on route ")
    assert (suite.api, suite.model, len(suite.cases)) == ("anthropic", "claude-sonnet-4-5", 2)
    spain, france = suite.cases  # newest first
    assert [m["role"] for m in spain.messages] == ["user", "assistant", "user"]
    assert france.system == "Be brief."
    assert "ann@example.com" not in text
    assert france.messages[0]["content"].startswith("What is the capital of France? Mail me at ")
    assert doc["cases"][1]["notes"].endswith(": The capital of France is Paris.")


def test_a_captured_suite_runs_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = serve_traffic(
        tmp_path, "redacted", [{"model": "claude-sonnet-4-5", "messages": [SPAIN]}]
    )
    main(["eval", "capture", "-c", str(config), "--route", "claude-sonnet-4-5"])
    suite_path = tmp_path / "captured.yaml"
    suite_path.write_text(capsys.readouterr().out)

    code = main(["eval", str(suite_path), "-c", str(config), "--no-store"])

    assert code == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS: claude-sonnet-4-5 passed")


def test_capture_says_when_the_ledger_kept_no_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = serve_traffic(tmp_path, "off", [{"model": "claude-sonnet-4-5", "messages": [SPAIN]}])

    code = main(["eval", "capture", "-c", str(config), "--route", "claude-sonnet-4-5"])

    assert code == 2
    assert capsys.readouterr().err == (
        "tollhouse eval: capture: no answered call on route 'claude-sonnet-4-5' kept its text "
        "(1 calls, none with text: is ledger.text off?)\n"
    )


def test_capture_needs_a_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "capture", "--sqlite", str(tmp_path / "none.db")])

    assert code == 2
    assert "capture: --route is required" in capsys.readouterr().err


def test_prompt_text_lines_become_messages_again() -> None:
    text = "system: Be brief.\nuser: first line\nsecond line\nassistant: ok\nuser: [image] what?"

    assert parse_prompt_text(text) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first line\nsecond line"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "[image] what?"},
    ]
