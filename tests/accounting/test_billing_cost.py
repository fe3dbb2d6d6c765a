"""`cost_of` on the lines beside the token card (server tools, iterations, modifiers), and
the usage fields they come from, against figures worked out by hand. Rates are USD per
million tokens; the catalog entries are named where used."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tollhouse.accounting.cost import context_window_of, cost_of
from tollhouse.accounting.usage import Iteration, Usage, usage_from_anthropic, usage_from_openai
from tollhouse.catalog.models import CatalogError, CatalogModel, load_catalog, parse_catalog


def entry(name: str) -> CatalogModel:
    found = load_catalog().get(name)
    assert found is not None, name
    return found


def test_each_server_tool_is_its_own_line_at_its_rate() -> None:
    usage = Usage(
        input_tokens=1_000, server_tool_use=(("web_fetch_requests", 4), ("web_search_requests", 7))
    )
    cost = cost_of(entry("claude-haiku-4-5"), usage)
    # input 1,000 x $1 / 1M = $0.001; 7 searches x $0.01 = $0.07; 4 fetches x $0 = $0
    assert cost.tool_lines == (("web_fetch_requests", 0), ("web_search_requests", Decimal("0.07")))
    assert (cost.server_tools, cost.total) == (Decimal("0.07"), Decimal("0.071"))


def test_a_tool_without_a_rate_makes_the_total_unknown_and_says_which() -> None:
    usage = Usage(input_tokens=1_000, server_tool_use=(("code_execution_requests", 1),))
    cost = cost_of(entry("claude-haiku-4-5"), usage)
    assert (cost.total, cost.server_tools) == (None, None)
    assert cost.input == Decimal("0.001")
    assert cost.unpriced == ("server_tool_use.code_execution_requests",)


def test_each_iteration_has_its_own_long_context_threshold() -> None:
    # Claude Sonnet 4.5: $3 / $15 up to 200K prompt tokens, $6 / $22.50 above.
    big = Iteration("compaction", input_tokens=250_000, output_tokens=1_000)
    small = Iteration("message", input_tokens=100_000, output_tokens=1_000)
    usage = Usage(input_tokens=350_000, output_tokens=2_000, iterations=(big, small))
    cost = cost_of(entry("claude-sonnet-4-5"), usage)
    # big:   250,000 x $6 + 1,000 x $22.50 = $1.5 + $0.0225 = $1.5225
    # small: 100,000 x $3 + 1,000 x $15    = $0.3 + $0.015  = $0.315
    assert cost.total == Decimal("1.8375")
    assert cost.long_context


def test_modifiers_stack_and_a_missing_one_is_unknown_not_one() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=1_000, inference_geo="us", speed="fast")
    # Opus 4.6: ($0.005 + $0.025) x 1.1 x 6 = $0.198
    assert cost_of(entry("claude-opus-4-6"), usage).total == Decimal("0.198")
    unknown = cost_of(entry("claude-opus-5-5"), usage)  # no fast-mode rate in the catalog
    assert (unknown.total, unknown.unpriced) == (None, ("speed:fast",))


def test_fast_mode_past_its_published_prompt_limit_is_unknown() -> None:
    usage = Usage(input_tokens=200_001, speed="fast")
    cost = cost_of(entry("claude-opus-4-6"), usage)
    assert (cost.total, cost.unpriced) == (None, ("speed:fast",))


def test_a_tier_with_its_own_rates_has_none_for_long_context() -> None:
    usage = Usage(input_tokens=300_000, service_tier="priority")
    cost = cost_of(entry("gpt-5.4"), usage)
    assert (cost.total, cost.unpriced) == (None, ("service_tier:priority",))


def test_anthropic_priority_is_standard_rates_billed_against_a_commitment() -> None:
    usage = Usage(input_tokens=1_000, service_tier="priority")
    cost = cost_of(entry("claude-haiku-4-5"), usage)
    assert (cost.total, cost.commitment) == (Decimal("0.001"), True)


def test_an_unknown_tier_is_unknown() -> None:
    cost = cost_of(entry("gpt-5.4"), Usage(input_tokens=10, service_tier="scale"))
    assert cost.unpriced == ("service_tier:scale",)


def test_audio_tokens_need_an_audio_rate() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 1_000,
            "completion_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 300},
        }
    )
    assert (usage.input_tokens, usage.audio_input_tokens) == (700, 300)
    assert cost_of(entry("gpt-4o-mini"), usage).unpriced == ("tokens.audio_input",)


@pytest.mark.parametrize(
    ("model", "prompt", "band"),
    [
        ("claude-opus-4-6", 1_000, "0-200k"),
        ("claude-opus-4-6", 200_001, "200k-1M"),
        ("gpt-5.4", 300_000, "272k-1.05M"),
        ("claude-3-haiku-20240307", 10, "0-200k"),
    ],
)
def test_the_context_window_band_is_split_at_the_long_context_threshold(
    model: str, prompt: int, band: str
) -> None:
    assert context_window_of(entry(model), Usage(input_tokens=prompt)) == band


def test_upstream_labels_and_tool_names_are_bounded() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 1,
            "output_tokens": 1,
            "service_tier": "x" * 100,
            "speed": "fast",
            "server_tool_use": {"Weird Name!": 2, "web_search_requests": 1, "bad": "3"},
        }
    )
    assert (usage.service_tier, usage.speed) == ("other", "fast")
    assert usage.server_tool_use == (("other", 2), ("web_search_requests", 1))


def test_a_modifier_gives_exactly_one_way() -> None:
    document: dict[str, Any] = {
        "models": [
            {
                "id": "m",
                "provider": "openai",
                "display_name": "M",
                "context_window": 1000,
                "max_output_tokens": 10,
                "released": "2026-01-01",
                "pricing": {"input": "1", "output": "1"},
                "speed": {"fast": {"source": "s", "as_of": "2026-01-01"}},
            }
        ]
    }
    with pytest.raises(CatalogError, match="exactly one of"):
        parse_catalog(document)


def test_provider_defaults_fill_the_models_and_an_entry_overrides_them() -> None:
    rate = {"usd_per_unit": "0.01", "unit": "call", "source": "s", "as_of": "2026-01-01"}
    model = {
        "provider": "openai",
        "display_name": "M",
        "context_window": 1000,
        "max_output_tokens": 10,
        "released": "2026-01-01",
        "pricing": {"input": "1", "output": "1"},
    }
    catalog = parse_catalog(
        {
            "provider_defaults": {"openai": {"server_tools": {"web_search_requests": rate}}},
            "models": [
                {**model, "id": "a"},
                {
                    **model,
                    "id": "b",
                    "server_tools": {"web_search_requests": {**rate, "usd_per_unit": "0.02"}},
                },
            ],
        }
    )
    prices = [catalog.get(name).server_tools["web_search_requests"].usd_per_unit for name in "ab"]  # type: ignore[union-attr]
    assert prices == [Decimal("0.01"), Decimal("0.02")]


def test_every_shipped_rate_beside_the_card_names_its_source_and_date() -> None:
    for model in load_catalog().models:
        rates = [*model.server_tools.values(), *model.inference_geo.values()]
        rates += [*model.speed.values(), *model.service_tier.values()]
        for rate in rates:
            assert rate.source.startswith("https://"), model.id
            assert rate.as_of.year >= 2026, model.id
