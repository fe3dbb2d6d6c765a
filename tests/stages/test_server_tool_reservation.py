"""The budget reservation holds a call's server tools too: a request that enables web
search reserves every search its `max_uses` allows, at the catalog's per-search rate, on
top of its tokens, and the settled cost books the searches it really made."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.test_keys_limits_budgets import HI, claude, create_key, gpt, keyed_gateway

from tollhouse.accounting.server_tools import requested_server_tool_uses
from tollhouse.config.model import Budget


def web_search(max_uses: int) -> list[dict[str, Any]]:
    return [{"type": "web_search_20250305", "name": "web_search", "max_uses": max_uses}]


def test_a_call_is_refused_when_its_allowed_searches_exceed_the_budget(tmp_path: Path) -> None:
    # $0.05 a day. Haiku tokens of this call: at most ~60 input x $1 + 100 output x $5 per
    # 1M, under $0.001; 10 searches at $0.01 are $0.10 more, over the budget; 2 are $0.02.
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.05")))
    server = keyed_gateway(tmp_path)
    client = claude(server.url, secret)
    searched = {"x-simulator-usage": json.dumps({"server_tool_use": {"web_search_requests": 2}})}
    try:
        with pytest.raises(anthropic.RateLimitError) as refused:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=100, messages=HI, tools=web_search(10)
            )
        answer = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=HI,
            tools=web_search(2),
            extra_headers=searched,
        )
    finally:
        server.stop()
    assert "budget" in refused.value.message
    assert answer.usage.server_tool_use is not None
    (record,) = [r for r in read_sqlite(tmp_path / "ledger.db") if r.status == 200]
    assert record.web_search_requests == 2
    assert record.cost_usd is not None
    assert record.web_search_cost_usd == Decimal("0.02")
    assert record.cost_usd > Decimal("0.02")


def test_an_openai_search_model_request_reserves_its_one_search(tmp_path: Path) -> None:
    # $0.005 affords the tokens of a short answer but not a $0.01 search.
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.005")))
    server = keyed_gateway(tmp_path)
    client = gpt(server.url, secret)
    try:
        client.chat.completions.create(model="gpt-4o-mini", max_tokens=20, messages=HI)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(
                model="gpt-4o-mini", max_tokens=20, messages=HI, web_search_options={}
            )
    finally:
        server.stop()
    assert "budget" in refused.value.message


def test_requested_uses_follow_each_tool_and_its_max_uses() -> None:
    body = {
        "tools": [
            {"type": "web_search_20260209", "name": "web_search", "max_uses": 3},
            {"type": "web_fetch_20250910", "name": "web_fetch"},
            {"type": "custom", "name": "lookup"},
        ]
    }
    assert requested_server_tool_uses(body) == {
        "web_search_requests": 3,
        "web_fetch_requests": 10,  # no max_uses: DEFAULT_MAX_USES
    }
    assert requested_server_tool_uses({"web_search_options": {}}) == {"web_search_requests": 1}
    assert requested_server_tool_uses({"tools": "nonsense"}) == {}
