"""Parameter rules through the official SDKs: a parameter the serving model refuses (the
catalog's `parameter_rules`) is dropped and said so, refused with 400 naming it, or relayed,
per `lifecycle.parameters`, and a fallback onto a rule-carrying model meets its rules.

The simulator's Anthropic format refuses a temperature above 1, so `temperature=1.5`
reaching it fails: a call that succeeds with it proves the gateway left it out. (The
Anthropic SDK no longer offers the sampling parameters as arguments; a client still sends
them, in `extra_body`.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.test_keys_limits_budgets import HI, claude, gpt
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.catalog.models import CatalogError, ParameterRule, load_catalog, merge_catalog
from tollhouse.server.runner import BackgroundServer
from tollhouse.stages.shape.parameter_rules import rejected_parameters

OPEN = "unused"  # the gateway requires no keys
DROPPED = "x-tollhouse-dropped-params"
STRICT = {
    "models": [
        {
            "id": "strict-claude",
            "provider": "anthropic",
            "display_name": "Strict",
            "context_window": 200000,
            "max_output_tokens": 8192,
            "released": "2026-01-01",
            "pricing": {"input": "1", "output": "5"},
            "parameter_rules": [{"name": "temperature", "default": 1}, {"name": "top_k"}],
        }
    ]
}
SIM = {"type": "simulator", "simulator": {"format": "anthropic"}}
ROUTES: dict[str, Any] = {
    "strict": {"deployments": [{"provider": "sim-anthropic", "model": "strict-claude"}]},
    "opus": {"deployments": [{"provider": "sim-anthropic", "model": "claude-opus-4-7"}]},
    # The first deployment fails every call; the fallback carries the rules.
    "falls-to-strict": {
        "deployments": [
            {"provider": "sim-down", "model": "plain-claude"},
            {"provider": "sim-anthropic", "model": "strict-claude"},
        ]
    },
}


def gateway(tmp_path: Path, **sections: Any) -> BackgroundServer:
    providers = {**IN_PROCESS_CONFIG["providers"], "sim-down": {**SIM}}
    providers["sim-down"]["simulator"] = {"format": "anthropic", "faults": ["503"]}
    config = {
        **IN_PROCESS_CONFIG,
        "providers": providers,
        "models": sections.pop("models", ROUTES),
        "catalog": STRICT,
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        **sections,
    }
    return serve_gateway(config)


def test_refused_parameters_are_dropped_by_default_and_said_so(tmp_path: Path) -> None:
    server = gateway(tmp_path)
    try:
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="strict",
            max_tokens=5,
            messages=HI,
            extra_body={"temperature": 1.5, "top_k": 5, "top_p": 0.5},
        )
        raw.parse()
    finally:
        server.stop()
    assert raw.headers[DROPPED] == "temperature, top_k"
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.status == 200
    assert record.metadata["dropped_params"] == ["temperature", "top_k"]


def test_a_parameter_at_its_default_is_kept(tmp_path: Path) -> None:
    server = gateway(tmp_path)
    try:
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="strict", max_tokens=5, messages=HI, extra_body={"temperature": 1}
        )
    finally:
        server.stop()
    assert DROPPED not in raw.headers


def test_the_shipped_catalog_drops_temperature_for_claude_opus_4_7_across_formats(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path)
    try:
        raw = gpt(server.url, OPEN).chat.completions.with_raw_response.create(
            model="opus", messages=HI, temperature=1.5, top_p=0.9
        )
        raw.parse()
    finally:
        server.stop()
    assert raw.headers[DROPPED] == "temperature, top_p"


def test_refuse_answers_400_naming_the_parameter(tmp_path: Path) -> None:
    server = gateway(tmp_path, lifecycle={"parameters": "refuse"})
    try:
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude(server.url, OPEN).messages.create(
                model="strict", max_tokens=5, messages=HI, extra_body={"temperature": 0.3}
            )
        with pytest.raises(openai.BadRequestError) as caught_gpt:
            gpt(server.url, OPEN).chat.completions.create(
                model="strict", messages=HI, temperature=0.3
            )
    finally:
        server.stop()
    assert caught.value.status_code == 400
    assert "temperature: strict-claude does not accept temperature=0.3" in caught.value.message
    assert "or at its default 1" in caught.value.message
    assert caught_gpt.value.param == "temperature"
    (record, _) = read_sqlite(tmp_path / "ledger.db")
    assert record.attempts == 0


def test_relay_sends_the_parameter_as_it_came(tmp_path: Path) -> None:
    models = {"strict": {**ROUTES["strict"], "lifecycle": {"parameters": "relay"}}}
    server = gateway(tmp_path, models=models)
    try:
        # Relayed, the temperature reaches the simulator, which refuses it.
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude(server.url, OPEN).messages.create(
                model="strict", max_tokens=5, messages=HI, extra_body={"temperature": 1.5}
            )
    finally:
        server.stop()
    assert "Input should be a number between 0 and 1" in caught.value.message


def test_a_fallback_onto_a_rule_carrying_model_drops_what_it_refuses(tmp_path: Path) -> None:
    server = gateway(tmp_path, lifecycle={"parameters": "refuse"})
    try:
        # The first deployment has no rules, so nothing is refused up front; the fallback
        # does, and the call, accepted already, goes to it without the parameter.
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="falls-to-strict",
            max_tokens=5,
            messages=HI,
            extra_body={"temperature": 1.5},
        )
        answer = raw.parse()
    finally:
        server.stop()
    assert answer.model == "strict-claude"
    assert raw.headers[DROPPED] == "temperature"
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.fallback_used
    assert record.model_served == "strict-claude"
    assert record.metadata["dropped_params"] == ["temperature"]


def test_rejected_parameters_are_those_set_away_from_their_default() -> None:
    rules = (ParameterRule("temperature", 1.0), ParameterRule("top_k"))

    assert rejected_parameters(rules, {"temperature": 1}) == []
    assert rejected_parameters(rules, {"temperature": None, "top_k": 0}) == ["top_k"]
    assert rejected_parameters(rules, {"temperature": 0.2}) == ["temperature"]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"name": "model"}], "must name an optional request parameter"),
        ([{"name": "top_k"}, {"name": "top_k"}], "names a parameter twice"),
        ([{"name": "top_k", "default": "high"}], r"parameter_rules\[0\].default"),
    ],
)
def test_a_bad_parameter_rule_is_refused_naming_the_field(
    rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        merge_catalog(load_catalog(), [{"id": "o3", "parameter_rules": rules}])
