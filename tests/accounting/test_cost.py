"""The cost of a call, checked against figures worked out by hand from the price cards.

Rates are USD per million tokens, so each part is tokens x rate / 1,000,000.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tollhouse.accounting.cost import CallCost, cost_of
from tollhouse.accounting.usage import (
    AnthropicStreamUsage,
    OpenAIStreamUsage,
    Usage,
    usage_from_anthropic,
    usage_from_openai,
)
from tollhouse.catalog.models import CatalogModel, load_catalog, merge_catalog
from tollhouse.wire.sse import SSEEvent


def entry(name: str) -> CatalogModel:
    found = load_catalog().get(name)
    assert found is not None, name
    return found


# Claude Haiku 4.5: input $1, output $5, 5m write $1.25, 1h write $2, cache read $0.10,
# batch input $0.50, batch output $2.50.
HAIKU_USAGE = Usage(
    input_tokens=1_000, output_tokens=500, cache_write_5m_tokens=2_000, cache_read_tokens=3_000
)


def test_haiku_call_costs_each_token_type_at_its_rate() -> None:
    cost = cost_of(entry("claude-haiku-4-5"), HAIKU_USAGE)

    # input        1,000 x $1.00 / 1M = $0.001
    # output         500 x $5.00 / 1M = $0.0025
    # 5m write     2,000 x $1.25 / 1M = $0.0025
    # cache read   3,000 x $0.10 / 1M = $0.0003
    # total                            = $0.0063
    assert cost == CallCost(
        total=Decimal("0.0063"),
        input=Decimal("0.001"),
        output=Decimal("0.0025"),
        cache_write=Decimal("0.0025"),
        cache_read=Decimal("0.0003"),
        priced_by="claude-haiku-4-5-20251001",
        cache_write_5m=Decimal("0.0025"),
        context_window="0-200k",
    )


def test_one_hour_cache_writes_cost_their_own_rate() -> None:
    cost = cost_of(entry("claude-haiku-4-5"), Usage(cache_write_1h_tokens=4_000))

    # 4,000 x $2.00 / 1M = $0.008 (not the 5m rate's $0.005)
    assert cost.cache_write == Decimal("0.008")
    assert cost.total == Decimal("0.008")


def test_batch_halves_every_token_type_including_cache_tokens() -> None:
    cost = cost_of(entry("claude-haiku-4-5"), HAIKU_USAGE, batch=True)

    # input        1,000 x $0.50   / 1M = $0.0005
    # output         500 x $2.50   / 1M = $0.00125
    # 5m write     2,000 x $0.625  / 1M = $0.00125   ($1.25 x 0.50 / 1.00)
    # cache read   3,000 x $0.05   / 1M = $0.00015   ($0.10 x 0.50 / 1.00)
    # total                              = $0.00315
    assert cost.total == Decimal("0.00315")
    assert (cost.input, cost.output) == (Decimal("0.0005"), Decimal("0.00125"))
    assert (cost.cache_write, cost.cache_read) == (Decimal("0.00125"), Decimal("0.00015"))
    assert cost.batch


def test_a_prompt_over_200k_pays_sonnet_4_5_long_context_rates_on_every_token() -> None:
    usage = Usage(
        input_tokens=150_000,
        output_tokens=1_000,
        cache_write_5m_tokens=20_000,
        cache_read_tokens=40_000,
    )

    cost = cost_of(entry("claude-sonnet-4-5"), usage)

    # prompt = 150,000 + 40,000 + 20,000 = 210,000 > 200,000: long-context card
    # input     150,000 x $6.00  / 1M = $0.90
    # output      1,000 x $22.50 / 1M = $0.0225
    # 5m write   20,000 x $7.50  / 1M = $0.15
    # cache read 40,000 x $0.60  / 1M = $0.024
    # total                            = $1.0965
    assert cost.total == Decimal("1.0965")
    assert cost.long_context


def test_a_prompt_of_exactly_200k_pays_sonnet_4_5_standard_rates() -> None:
    usage = Usage(
        input_tokens=140_000,
        output_tokens=1_000,
        cache_write_5m_tokens=20_000,
        cache_read_tokens=40_000,
    )

    cost = cost_of(entry("claude-sonnet-4-5"), usage)

    # prompt = 200,000, not over the threshold: standard card
    # 140,000 x $3 + 1,000 x $15 + 20,000 x $3.75 + 40,000 x $0.30, all / 1M
    # = $0.42 + $0.015 + $0.075 + $0.012 = $0.522
    assert cost.total == Decimal("0.522")
    assert not cost.long_context


def test_cached_tokens_count_toward_the_long_context_threshold() -> None:
    usage = Usage(input_tokens=50_000, cache_read_tokens=160_000, output_tokens=10)

    assert cost_of(entry("claude-sonnet-4-5"), usage).long_context


def test_haiku_5_5_long_prompt_in_a_batch_pays_half_the_long_prompt_rates() -> None:
    usage = Usage(input_tokens=90_000, output_tokens=2_000, cache_read_tokens=20_000)

    cost = cost_of(entry("claude-haiku-5-5"), usage, batch=True)

    # prompt = 110,000 > 100,000: long-prompt card ($0.50 / $2.50 / read $0.05), halved
    # input      90,000 x $0.25  / 1M = $0.0225
    # output      2,000 x $1.25  / 1M = $0.0025
    # cache read 20,000 x $0.025 / 1M = $0.0005
    # total                            = $0.0255
    assert cost.total == Decimal("0.0255")
    assert cost.long_context
    assert cost.batch


def test_an_openai_call_is_priced_from_its_chat_completions_usage() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 10_000,
            "completion_tokens": 1_200,
            "prompt_tokens_details": {"cached_tokens": 4_000},
            "completion_tokens_details": {"reasoning_tokens": 800},
        }
    )

    cost = cost_of(entry("gpt-5-mini-2025-08-07"), usage)

    # GPT-5 mini: input $0.25, cached input $0.025, output $2.00
    # input       6,000 x $0.25  / 1M = $0.0015   (10,000 prompt - 4,000 cached)
    # cache read  4,000 x $0.025 / 1M = $0.0001
    # output      1,200 x $2.00  / 1M = $0.0024   (reasoning already inside)
    # total                            = $0.004
    assert cost.total == Decimal("0.004")
    assert cost.priced_by == "gpt-5-mini"


def test_openai_cache_writes_are_priced_by_retention() -> None:
    usage_doc = {
        "prompt_tokens": 50_000,
        "completion_tokens": 2_000,
        "prompt_tokens_details": {"cached_tokens": 10_000, "cache_write_tokens": 30_000},
    }
    terra = entry("gpt-6.1-terra")

    default = cost_of(terra, usage_from_openai(usage_doc))
    extended = cost_of(terra, usage_from_openai(usage_doc, extended_cache_retention=True))

    # GPT-6.1 Terra: input $1, cached $0.05, 30-min write $1.25, 12-h write $2.50, output $5
    # input 10,000 x $1 = $0.01; read 10,000 x $0.05 = $0.0005; output 2,000 x $5 = $0.01
    # 30-min writes 30,000 x $1.25 = $0.0375 -> total $0.058
    # 12-hour writes 30,000 x $2.50 = $0.075  -> total $0.0955
    assert default.total == Decimal("0.058")
    assert extended.total == Decimal("0.0955")


def test_an_openai_prompt_over_272k_pays_long_context_rates_on_the_whole_request() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 300_000,
            "completion_tokens": 10_000,
            "prompt_tokens_details": {"cached_tokens": 100_000},
        }
    )

    cost = cost_of(entry("gpt-5.4"), usage)

    # GPT-5.4 over 272K: input $5 (2x), cached $0.50 (2x), output $22.50 (1.5x)
    # 200,000 x $5 + 100,000 x $0.50 + 10,000 x $22.50, all / 1M = $1 + $0.05 + $0.225
    assert cost.total == Decimal("1.275")


def test_an_openai_prompt_of_exactly_272k_pays_standard_rates() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 272_000,
            "completion_tokens": 10_000,
            "prompt_tokens_details": {"cached_tokens": 100_000},
        }
    )

    cost = cost_of(entry("gpt-5.4"), usage)

    # 172,000 x $2.50 + 100,000 x $0.25 + 10,000 x $15, all / 1M = $0.43 + $0.025 + $0.15
    assert cost.total == Decimal("0.605")


def test_a_streamed_anthropic_call_is_priced_from_its_final_usage() -> None:
    observer = AnthropicStreamUsage()
    start = (
        '{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
        '"content":[],"usage":{"input_tokens":1000,"cache_creation_input_tokens":2000,'
        '"cache_read_input_tokens":3000,"output_tokens":1}}}'
    )
    delta = (
        '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":500}}'
    )
    for event in (SSEEvent("message_start", start), SSEEvent("message_delta", delta)):
        observer.feed(event)

    # The same tokens as the Haiku 4.5 call worked out above: $0.0063.
    assert cost_of(entry("claude-haiku-4-5"), observer.usage).total == Decimal("0.0063")


def test_a_streamed_openai_call_cut_off_is_priced_on_its_output_estimate() -> None:
    observer = OpenAIStreamUsage()
    observer.feed(
        SSEEvent(None, '{"choices":[{"index":0,"delta":{"content":"Hello, world! How are"}}]}')
    )

    cost = cost_of(entry("gpt-4o-mini"), observer.usage)

    # 21 bytes: 6 estimated output tokens x $0.60 / 1M = $0.0000036
    assert cost.total == Decimal("0.0000036")


def test_an_unknown_model_costs_unknown_not_zero() -> None:
    cost = cost_of(load_catalog().get("gpt-99-turbo"), HAIKU_USAGE)

    assert cost == CallCost(None, None, None, None, None, None, unpriced=("model",))


def test_a_model_without_a_price_card_costs_unknown() -> None:
    local = {
        "id": "local-llm",
        "provider": "openai",
        "display_name": "Local",
        "context_window": 8192,
        "max_output_tokens": 1024,
        "released": "2026-01-01",
    }
    catalog = merge_catalog(load_catalog(), [local])

    assert cost_of(catalog.get("local-llm"), HAIKU_USAGE).total is None


def test_a_self_hosted_model_priced_at_zero_costs_zero() -> None:
    local = {
        "id": "local-llm",
        "provider": "openai",
        "display_name": "Local",
        "context_window": 8192,
        "max_output_tokens": 1024,
        "released": "2026-01-01",
        "pricing": {
            "input": "0",
            "output": "0",
            "cache_read": "0",
            "batch_input": "0",
            "batch_output": "0",
        },
    }
    catalog = merge_catalog(load_catalog(), [local])

    assert (
        cost_of(catalog.get("local-llm"), Usage(input_tokens=5, output_tokens=7), batch=True).total
        == 0
    )


def test_a_token_type_the_card_does_not_price_makes_the_total_unknown() -> None:
    # GPT-4o caches implicitly and publishes no cache-write rate.
    usage = Usage(input_tokens=1_000, output_tokens=100, cache_write_5m_tokens=500)

    cost = cost_of(entry("gpt-4o"), usage)

    assert cost.cache_write is None
    assert cost.total is None
    assert cost.input == Decimal("0.0025")  # 1,000 x $2.50 / 1M, still shown


def test_a_batch_call_on_a_model_without_batch_prices_costs_unknown() -> None:
    catalog = merge_catalog(
        load_catalog(), [{"id": "o3", "pricing": {"input": "2", "output": "8"}}]
    )

    cost = cost_of(catalog.get("o3"), Usage(input_tokens=10), batch=True)

    assert cost.total is None
    assert cost.priced_by == "o3"


def test_a_call_with_no_tokens_costs_nothing() -> None:
    assert cost_of(entry("gpt-4o"), Usage()).total == Decimal(0)


@pytest.mark.parametrize("name", [model.id for model in load_catalog().models])
def test_a_million_output_tokens_cost_exactly_the_listed_output_rate(name: str) -> None:
    model = entry(name)
    assert model.pricing is not None

    cost = cost_of(model, Usage(output_tokens=1_000_000))

    assert cost.total == model.pricing.output


def test_cost_from_an_anthropic_usage_object_matches_the_hand_worked_haiku_figure() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 1_000,
            "output_tokens": 500,
            "cache_creation_input_tokens": 2_000,
            "cache_read_input_tokens": 3_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 0},
        }
    )

    assert cost_of(entry("claude-haiku-4-5-20251001"), usage).total == Decimal("0.0063")
