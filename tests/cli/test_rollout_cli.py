"""`tollhouse rollout`: promote, status and roll back a canary as new config versions, on
the config store of a gateway config file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.support import IN_PROCESS_CONFIG

from tollhouse.cli import main
from tollhouse.ports.config.sqlite import SQLiteConfigStore

ROUTE = {
    "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
    "variants": {"control": {"weight": 100}, "concise": {"weight": 0}},
}


def setup(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    config = {
        **IN_PROCESS_CONFIG,
        "models": {"support": ROUTE},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db")},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))

    async def record() -> None:
        store = SQLiteConfigStore(tmp_path / "keys.db")
        try:
            await store.add(config, source="file", note="start")
        finally:
            await store.aclose()

    asyncio.run(record())
    return path, config


def weights(tmp_path: Path) -> tuple[dict[str, Any], str, str]:
    async def newest() -> Any:
        store = SQLiteConfigStore(tmp_path / "keys.db")
        try:
            return await store.latest()
        finally:
            await store.aclose()

    version = asyncio.run(newest())
    variants = version.document["models"]["support"]["variants"]
    return {n: v["weight"] for n, v in variants.items()}, version.source, version.note


def test_promote_then_roll_back_are_new_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = setup(tmp_path)
    assert main(["rollout", "promote", "support", "concise", "--to", "1", "-c", str(path)]) == 0
    assert weights(tmp_path) == (
        {"control": 99, "concise": 1},
        "cli",
        "promote support/concise from 0 % to 1 %",
    )
    assert main(["rollout", "promote", "support", "concise", "--to", "10", "-c", str(path)]) == 0
    assert weights(tmp_path)[0] == {"control": 90, "concise": 10}
    assert main(["rollout", "rollback", "support", "concise", "-c", str(path)]) == 0
    assert weights(tmp_path) == (
        {"control": 100, "concise": 0},
        "cli",
        "roll back support/concise to 0 %",
    )
    assert "config version 4: roll back support/concise to 0 %" in capsys.readouterr().out


def test_status_shows_weights_and_the_last_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = setup(tmp_path)
    main(["rollout", "promote", "support", "concise", "--to", "5", "-c", str(path)])
    capsys.readouterr()
    assert main(["rollout", "status", "--json", "-c", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    (route,) = report["routes"]
    assert [(v["variant"], v["weight"], v["control"]) for v in route["variants"]] == [
        ("control", 95, True),
        ("concise", 5, False),
    ]
    assert route["last_change"]["version"] == 2
    assert route["last_change"]["note"] == "promote support/concise from 0 % to 5 %"
    concise = route["variants"][1]
    assert concise["calls"] == 0
    assert concise["enough_calls"] is False
    assert {f["guardrail"] for f in concise["guardrails"]} >= {"error_rate", "latency_p95"}
    assert main(["rollout", "status", "-c", str(path)]) == 0
    table = capsys.readouterr().out
    assert "concise" in table
    assert "5%" in table


def test_a_weight_the_control_cannot_give_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = setup(tmp_path)
    assert main(["rollout", "promote", "support", "control", "--to", "10", "-c", str(path)]) == 1
    assert "is the control of route 'support'" in capsys.readouterr().err
