"""Budget modes through the official SDKs: `clamp` (the default) lowers a call's max_tokens to
what is left of the budget instead of refusing it for a worst case it will not reach;
`reserve` refuses it and says which max_tokens would fit. In process and on Redis."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.test_keys_limits_budgets import HI, claude, create_key, gpt, keyed_gateway

from tollhouse.config.model import Budget
from tollhouse.server.runner import BackgroundServer

# A model whose whole output limit costs far more than the budgets below: $10 per million
# output tokens, 64,000 of them ($0.64), $1 per million input tokens.
WORDY = {
    "models": [
        {
            "id": f"wordy-{provider}",
            "provider": provider,
            "display_name": "Wordy",
            "context_window": 200000,
            "max_output_tokens": 64000,
            "released": "2026-01-01",
            "pricing": {"input": "1", "output": "10"},
        }
        for provider in ("anthropic", "openai")
    ]
}
CLAMP_HEADER = "x-tollhouse-max-tokens-clamped"


@pytest.fixture(params=["in_process", "redis"])
def counters(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "in_process":
        return {}
    return {
        "backend": "redis",
        "redis_url": request.getfixturevalue("redis_url"),
        "prefix": request.getfixturevalue("redis_prefix"),
        "timeout_seconds": 5.0,
    }


def wordy_gateway(tmp_path: Path, counters: dict[str, Any], **sections: Any) -> BackgroundServer:
    models = {
        "wordy": {"deployments": [{"provider": "sim-anthropic", "model": "wordy-anthropic"}]},
        "wordy-gpt": {"deployments": [{"provider": "sim-openai", "model": "wordy-openai"}]},
    }
    return keyed_gateway(tmp_path, models=models, catalog=WORDY, counters=counters, **sections)


def clamp_of(header: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in header.split("; "))


def test_an_openai_call_without_max_tokens_is_clamped_to_what_the_budget_affords(
    tmp_path: Path, counters: dict[str, Any]
) -> None:
    # $0.002 buys about 200 output tokens; the model's whole output limit would cost $0.64.
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.002")))
    server = wordy_gateway(tmp_path, counters)
    try:
        raw = gpt(server.url, secret).chat.completions.with_raw_response.create(
            model="wordy-gpt", messages=HI
        )
        answer = raw.parse()
    finally:
        server.stop()
    clamp = clamp_of(raw.headers[CLAMP_HEADER])
    sent = int(clamp["sent"])
    assert clamp["by"] == "budget"
    assert clamp["asked"] == "unset"
    assert 150 <= sent <= 200
    assert answer.usage is not None
    assert answer.usage.completion_tokens <= sent
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.status == 200
    assert record.metadata["max_tokens_clamp"] == {"by": "budget", "asked": None, "sent": sent}
    assert record.cost_usd is not None
    assert record.cost_usd <= Decimal("0.002")


def test_an_anthropic_call_with_a_large_max_tokens_is_clamped_and_says_so(
    tmp_path: Path, counters: dict[str, Any]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.01")))
    server = wordy_gateway(tmp_path, counters)
    try:
        raw = claude(server.url, secret).messages.with_raw_response.create(
            model="wordy", max_tokens=20000, messages=HI
        )
        raw.parse()
    finally:
        server.stop()
    clamp = clamp_of(raw.headers[CLAMP_HEADER])
    assert clamp["by"] == "budget"
    assert clamp["asked"] == "20000"
    assert 900 <= int(clamp["sent"]) <= 1000
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.metadata["max_tokens_clamp"]["asked"] == 20000


def test_a_call_that_fits_the_budget_is_not_clamped(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("1")))
    server = wordy_gateway(tmp_path, {})
    try:
        raw = claude(server.url, secret).messages.with_raw_response.create(
            model="wordy", max_tokens=100, messages=HI
        )
    finally:
        server.stop()
    assert CLAMP_HEADER not in raw.headers
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert "max_tokens_clamp" not in record.metadata


def test_reserve_mode_refuses_and_says_which_max_tokens_fits(
    tmp_path: Path, counters: dict[str, Any]
) -> None:
    _, secret = create_key(
        tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.002"), mode="reserve")
    )
    server = wordy_gateway(tmp_path, counters)
    try:
        client = gpt(server.url, secret)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="wordy-gpt", messages=HI)
        assert caught.value.code == "insufficient_quota"
        message = str(caught.value)
        assert "worst case" in message
        assert "exceeds the $0.002000 left of the daily budget of $0.002" in message
        found = re.search(r"lower max_tokens to (\d+)", message)
        assert found is not None, message
        fits = int(found.group(1))
        assert 150 <= fits <= 200
        # The figure it names does fit: the same call with it is admitted, unclamped.
        raw = client.chat.completions.with_raw_response.create(
            model="wordy-gpt", messages=HI, max_tokens=fits
        )
        assert CLAMP_HEADER not in raw.headers
    finally:
        server.stop()


def test_clamp_refuses_only_when_not_even_a_minimal_answer_fits_and_the_cap_alert_fires(
    tmp_path: Path, counters: dict[str, Any]
) -> None:
    key_id, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.002")))
    server = wordy_gateway(tmp_path, counters, alerts={"budget": {"thresholds": [1.0]}})
    refused = None
    try:
        client = claude(server.url, secret)
        for _ in range(200):
            try:
                client.messages.create(model="wordy", max_tokens=4000, messages=HI)
            except anthropic.RateLimitError as error:
                refused = error
                break
            asyncio.run(asyncio.sleep(0))
        fired = metric(server.url, "tollhouse_alerts_total", kind="budget")
    finally:
        server.stop()
    assert isinstance(refused, anthropic.EnforcedSpendLimitReachedError)
    assert f"the daily budget of $0.002 for key {key_id} is reached" in refused.message
    assert "not enough for a minimal answer" in refused.message
    assert fired == 1  # the 100% threshold, once the cap is reached
    records = read_sqlite(tmp_path / "ledger.db")
    spent = sum((r.cost_usd or Decimal(0) for r in records), Decimal(0))
    # Never over the cap, and refused only once less than a minimal answer (16 output
    # tokens, $0.00016) was left.
    assert Decimal("0.002") - Decimal("0.00017") <= spent <= Decimal("0.002")
    assert sum(r.status == 429 for r in records) == 1
