"""Simulator options from a YAML/TOML mapping: validated once, errors that name the key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tollhouse.simulator.config import FaultRule, ScriptRule, SimulatorConfig


def test_from_mapping_builds_scripts_and_fault_rules() -> None:
    config = SimulatorConfig.from_mapping(
        {
            "seed": 3,
            "ttft_ms": 150,
            "tokens_per_second": 200.0,
            "scripts": [{"pattern": "hi", "reply": "hello"}],
            "faults": ["503", {"fault": "429", "model": "gpt-*", "first_n": 2}],
            "cache_ttl_seconds": 60,
        }
    )
    assert config.seed == 3
    assert config.scripts == (ScriptRule("hi", "hello"),)
    assert config.faults == (FaultRule("503"), FaultRule("429", model="gpt-*", first_n=2))


def test_an_empty_mapping_is_the_defaults() -> None:
    assert SimulatorConfig.from_mapping({}) == SimulatorConfig()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"sed": 1}, "sed: unknown option"),
        ({"seed": "one"}, "seed:"),
        ({"ttft_ms": -1}, "ttft_ms:"),
        ({"reply_tokens": 0}, "reply_tokens:"),
        ({"tokens_per_second": True}, "tokens_per_second:"),
        ({"rate_limit_requests_per_minute": 0}, "rate_limit_requests_per_minute:"),
        ({"cache_ttl_seconds": 0}, "cache_ttl_seconds:"),
        ({"scripts": {"pattern": "x"}}, "scripts: expected a list"),
        ({"scripts": [{"reply": "x"}]}, "scripts[0].pattern: required"),
        ({"scripts": [{"pattern": "("}]}, "scripts[0].pattern:"),
        ({"scripts": [{"pattern": "x", "answer": "y"}]}, "scripts[0].answer: unknown key"),
        ({"scripts": [{"pattern": "x", "tool_call": {"nom": "f"}}]}, "scripts[0].tool_call"),
        ({"faults": [{"fault": "explode"}]}, "faults[0].fault: unknown fault"),
        ({"faults": [{"fault": "500", "first_n": 0}]}, "faults[0].first_n:"),
        ({"faults": [{"fault": "500", "probability": 2}]}, "faults[0].probability:"),
        ({"faults": [7]}, "faults[0]: expected a mapping"),
    ],
)
def test_bad_options_name_the_key(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        SimulatorConfig.from_mapping(data)
