"""A route's variants as the config states them: what loads, and the error each mistake
gets (naming the key, saying what is expected) instead of a gateway that starts wrong."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support import IN_PROCESS_CONFIG

from tollhouse.config import ConfigError, parse_config

ROUTE = {"deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}]}


def with_variants(variants: dict[str, Any], **route: Any) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "models": {
            **IN_PROCESS_CONFIG["models"],
            "support": {**ROUTE, "variants": variants, **route},
        },
    }


def refusal(config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    return str(caught.value)


def test_variants_whose_weights_sum_to_100_load() -> None:
    config = parse_config(
        with_variants(
            {
                "control": {"weight": 99},
                "concise": {"weight": 0.5, "system": {"mode": "append", "text": "Be brief."}},
                "sonnet": {"weight": 0.5, "model": "claude-sonnet-4-5"},
            }
        )
    )
    variants = config.models["support"].variants
    assert [(name, v.weight) for name, v in variants.items()] == [
        ("control", 99),
        ("concise", 0.5),
        ("sonnet", 0.5),
    ]


def test_weights_that_do_not_sum_to_100_are_refused_with_each_weight() -> None:
    message = refusal(with_variants({"control": {"weight": 90}, "canary": {"weight": 5}}))
    assert "$.models.support.variants: weights sum to 95 (control 90, canary 5)" in message
    assert "must sum to 100" in message


def test_a_weight_finer_than_a_hundredth_is_refused() -> None:
    message = refusal(with_variants({"control": {"weight": 99.995}, "c": {"weight": 0.005}}))
    assert "$.models.support.variants.control.weight: at most two decimals" in message


def test_a_variant_naming_an_unknown_model_is_refused() -> None:
    message = refusal(
        with_variants({"control": {"weight": 90}, "next": {"weight": 10, "model": "gpt-9"}})
    )
    assert "$.models.support.variants.next.model: unknown model 'gpt-9'" in message
    assert "neither a route of this config nor a catalog model" in message


def test_a_variant_naming_an_unknown_provider_is_refused() -> None:
    deployments = [{"provider": "nowhere", "model": "x"}]
    message = refusal(
        with_variants({"control": {"weight": 90}, "c": {"weight": 10, "deployments": deployments}})
    )
    assert "$.models.support.variants.c.deployments[0].provider: unknown provider 'nowhere'" in (
        message
    )


def test_a_missing_control_is_refused_naming_the_variants() -> None:
    message = refusal(with_variants({"a": {"weight": 50}, "b": {"weight": 50}}))
    assert "$.models.support.control: the control variant 'control' is not among" in message
    assert "(a, b)" in message


def test_another_control_may_be_named() -> None:
    config = parse_config(with_variants({"a": {"weight": 50}, "b": {"weight": 50}}, control="a"))
    assert config.models["support"].control == "a"


def test_a_variant_may_not_set_the_conversation_as_a_parameter() -> None:
    message = refusal(
        with_variants(
            {"control": {"weight": 90}, "c": {"weight": 10, "parameters": {"messages": []}}}
        )
    )
    assert "$.models.support.variants.c.parameters.messages: not a parameter" in message


def test_an_unknown_variant_setting_is_refused_by_its_key() -> None:
    message = refusal(with_variants({"control": {"weight": 100, "sytem": "typo"}}))
    assert "sytem" in message
    assert "$.models.support.variants.control" in message


def test_a_weight_above_100_is_refused() -> None:
    message = refusal(with_variants({"control": {"weight": 150}}))
    assert "$.models.support.variants.control.weight" in message
