"""The gateway the eval tests run suites through: simulated upstreams whose scripted
replies make one model right and another wrong, a judge, and a real SQLite ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support import TEST_RELIABILITY

# The judge's scripts come first: its prompt holds the case's question too.
JUDGE_SCRIPTS = [
    {"pattern": r"Answer: .*Paris", "reply": "PASS\nIt names Paris."},
    {"pattern": r"Grade the answer", "reply": "FAIL\nIt does not name Paris."},
]
RIGHT = [
    {"pattern": r"capital of France", "reply": "The capital of France is Paris."},
    {"pattern": r"capital of Spain", "reply": "Madrid."},
]
WRONG = [
    {"pattern": r"capital of France", "reply": "The capital of France is London."},
    {"pattern": r"capital of Spain", "reply": "Madrid."},
]


def simulated(scripts: list[dict[str, str]], fmt: str = "anthropic") -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": fmt, "scripts": scripts}}


def gateway_config(directory: Path, **extra: Any) -> dict[str, Any]:
    """Three routes: `claude-haiku-4-5` answers wrong (and is the cheapest),
    `claude-sonnet-4-5` and `claude-opus-4-1` answer right (Sonnet for less); `judge`
    grades (priced as Haiku)."""
    return {
        "providers": {
            "sim-right": simulated(RIGHT),
            "sim-wrong": simulated(WRONG),
            "sim-judge": simulated(JUDGE_SCRIPTS),
            "sim-openai": simulated(RIGHT, "openai"),
        },
        "models": {
            "claude-haiku-4-5": {
                "deployments": [{"provider": "sim-wrong", "model": "claude-haiku-4-5-20251001"}]
            },
            "claude-sonnet-4-5": {
                "deployments": [{"provider": "sim-right", "model": "claude-sonnet-4-5-20250929"}]
            },
            "claude-opus-4-1": {
                "deployments": [{"provider": "sim-right", "model": "claude-opus-4-1-20250805"}]
            },
            "judge": {
                "deployments": [{"provider": "sim-judge", "model": "claude-haiku-4-5-20251001"}]
            },
            "gpt-4o-mini": {"deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}]},
        },
        "reliability": TEST_RELIABILITY,
        # These routes name real models whose retirement dates pass while the tests live.
        "lifecycle": {"retired": "allow"},
        "ledger": {
            "sqlite_path": str(directory / "ledger.db"),
            "spill_path": str(directory / "ledger.spill"),
            **extra.pop("ledger", {}),
        },
        "keys": {"sqlite_path": str(directory / "keys.db")},
        **extra,
    }


@dataclass
class EvalSetup:
    directory: Path
    config_path: Path
    config: dict[str, Any]

    @property
    def ledger_path(self) -> Path:
        return Path(self.config["ledger"]["sqlite_path"])

    @property
    def keys_path(self) -> Path:
        return Path(self.config["keys"]["sqlite_path"])

    def suite(self, doc: dict[str, Any] | str, name: str = "suite.yaml") -> Path:
        """A suite file (a mapping is written as JSON, which is YAML)."""
        path = self.directory / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path


@pytest.fixture
def setup(tmp_path: Path) -> EvalSetup:
    config = gateway_config(tmp_path)
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))
    return EvalSetup(tmp_path, path, config)


CAPITALS: dict[str, Any] = {
    "name": "capitals",
    "api": "anthropic",
    "model": "claude-sonnet-4-5",
    "cases": [
        {
            "id": "france",
            "prompt": "What is the capital of France?",
            "checks": [{"contains": "Paris"}, {"stop_reason": "end_turn"}],
        },
        {
            "id": "spain",
            "template": "What is the capital of {{country}}?",
            "variables": {"country": "Spain"},
            "checks": [{"regex": "(?i)madrid"}, {"not_contains": "London"}],
        },
    ],
}
"""Passes on Sonnet and Opus, fails on Haiku (France answered London)."""
