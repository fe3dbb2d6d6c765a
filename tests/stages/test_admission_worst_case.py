"""The worst case a budget reserves is what `cost_of` would charge, on every priced model.

Admission prices the worst case with whole nano-dollars per token (integer arithmetic,
once per call) where the catalog allows it; these tests hold it to `cost_of`, the one
pricing rule, across the whole catalog, on both sides of every long-context threshold,
and for routes whose deployments cost differently.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollhouse.accounting import Usage, cost_of
from tollhouse.call import Call
from tollhouse.catalog.models import CatalogModel, load_catalog
from tollhouse.config.loader import parse_config
from tollhouse.gateway import Gateway
from tollhouse.ports.counters import to_nanousd

CATALOG = load_catalog()
PRICED = [entry for entry in CATALOG.models if entry.pricing is not None]
LONG_CONTEXT = [entry for entry in PRICED if entry.pricing and entry.pricing.long_context]


def gateway_for(*upstream_models: str) -> Gateway:
    """A gateway whose route `m` has one deployment per model, with a global daily budget
    far above any call so that every call is admitted and holds its worst case."""
    return Gateway(
        parse_config(
            {
                "providers": {"sim": {"type": "simulator"}},
                "models": {
                    "m": {"deployments": [{"provider": "sim", "model": u} for u in upstream_models]}
                },
                "ledger": {"backend": "off"},
                "spend": {"project_budgets": {"p": {"daily_usd": "1000000"}}},
            }
        )
    )


def reserved(gateway: Gateway, input_tokens: int, output_tokens: int) -> int:
    """Nano-dollars admission holds against the budget for one call of the given size."""
    call = Call(
        client_format="anthropic",
        endpoint="messages",
        body={"model": "m", "max_tokens": output_tokens, "messages": []},
        raw_body=b"{}",
        headers={},
    )
    call.project = "p"
    call.input_estimate = input_tokens  # as request shaping leaves it when it counted

    async def admit() -> int:
        # In process, admission decides at once: nothing to await.
        assert gateway.admitter.admit(call, None, gateway.router.resolve("m")) is None
        reserve = call.admission.reservation.amounts.reserve_nanousd
        gateway.admitter.finish(call)
        return int(reserve)

    return asyncio.run(admit())


def expected(entries: list[CatalogModel], input_tokens: int, output_tokens: int) -> int:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    totals = [cost_of(entry, usage).total for entry in entries]
    return max(to_nanousd(total) for total in totals if total is not None)


@pytest.mark.parametrize("entry", PRICED, ids=lambda entry: entry.id)
def test_the_reserve_is_the_catalog_price_of_the_worst_case(entry: CatalogModel) -> None:
    gateway = gateway_for(entry.id)
    for input_tokens, output_tokens in ((1, 1), (12_345, 4_096), (150_000, 64_000)):
        if expected([entry], input_tokens, output_tokens) == 0:
            continue  # a free model holds nothing (tested with the SDKs)
        assert reserved(gateway, input_tokens, output_tokens) == expected(
            [entry], input_tokens, output_tokens
        )


@pytest.mark.parametrize("entry", LONG_CONTEXT, ids=lambda entry: entry.id)
def test_long_context_rates_apply_past_the_threshold_only(entry: CatalogModel) -> None:
    assert entry.pricing is not None
    assert entry.pricing.long_context is not None
    threshold = entry.pricing.long_context.threshold_tokens
    gateway = gateway_for(entry.id)
    for input_tokens in (threshold, threshold + 1):
        assert reserved(gateway, input_tokens, 1000) == expected([entry], input_tokens, 1000)
    at, past = reserved(gateway, threshold, 1000), reserved(gateway, threshold + 1, 1000)
    assert past - at > (past // (threshold + 1)), "the whole request moved to the higher rate"


@settings(max_examples=60, deadline=None)
@given(
    pair=st.lists(st.sampled_from(PRICED), min_size=2, max_size=3, unique_by=lambda e: e.id),
    input_tokens=st.integers(min_value=1, max_value=400_000),
    output_tokens=st.integers(min_value=1, max_value=128_000),
)
def test_a_route_reserves_the_cost_of_its_dearest_deployment(
    pair: list[CatalogModel], input_tokens: int, output_tokens: int
) -> None:
    want = expected(pair, input_tokens, output_tokens)
    if want == 0:
        return
    assert reserved(gateway_for(*(e.id for e in pair)), input_tokens, output_tokens) == want


def test_a_rate_in_fractions_of_a_nano_dollar_is_still_exact() -> None:
    """$0.0001234 per million tokens is 0.1234 nano-dollars a token: no integer arithmetic
    for that, so the reserve comes from cost_of, rounded up to the next nano-dollar."""
    odd_model = {
        "id": "odd-model",
        "provider": "anthropic",
        "display_name": "Odd",
        "context_window": 200_000,
        "max_output_tokens": 8_192,
        "released": "2026-01-01",
        "pricing": {"input": "0.0001234", "output": "0.0005678"},
    }
    gateway = Gateway(
        parse_config(
            {
                "providers": {"sim": {"type": "simulator"}},
                "models": {"m": {"deployments": [{"provider": "sim", "model": "odd-model"}]}},
                "catalog": {"models": [odd_model]},
                "ledger": {"backend": "off"},
                "spend": {"project_budgets": {"p": {"daily_usd": "1000000"}}},
            }
        )
    )
    usd = (1001 * Decimal("0.0001234") + 7 * Decimal("0.0005678")) / 1_000_000
    assert reserved(gateway, 1001, 7) == to_nanousd(usd)
    assert to_nanousd(usd) != usd * 1_000_000_000  # the case really is fractional
