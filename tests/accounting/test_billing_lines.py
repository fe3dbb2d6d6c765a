"""Every billable line of a call, end to end: the simulator reports the usage fields a
provider bills by (`x-simulator-usage`), the official SDKs call the gateway, whole and
streamed, and the figures are checked, hand-computed, in the ledger, the call log, the cost
report and `tollhouse usage`.

Rates used (catalog/models.yaml, each with its source there):
- claude-haiku-4-5-20251001: $1 input, $5 output, $0.10 cache read per MTok;
  web search $10 per 1,000 ($0.01), web fetch $0.
- claude-opus-4-6: $5 input, $25 output; US-only inference 1.1x; fast mode 6x.
- gpt-5.4: $2.50 input, $0.25 cached, $15 output; priority $5 / $0.50 / $30; flex at the
  batch rates ($1.25 / $7.50, cached 0.25 x 1.25/2.50 = $0.125).
- gpt-4o-mini: $0.15 input, $0.60 output; web search $0.01 per call.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.test_call_ledger import read_sqlite
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.cli import main as tollhouse
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.reports import cost_report
from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hello"}]
ROUTES = {
    **IN_PROCESS_CONFIG["models"],
    "claude-opus-4-6": {"deployments": [{"provider": "sim-anthropic", "model": "claude-opus-4-6"}]},
    "gpt-5.4": {"deployments": [{"provider": "sim-openai", "model": "gpt-5.4"}]},
}
# Anthropic counts the simulator reports for every call below, so the cents are fixed.
CLAUDE_COUNTS = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}
# OpenAI counts: 1,000 prompt tokens of which 200 cached, 500 completion tokens of which
# 300 reasoning (billed as output, inside completion_tokens).
GPT_COUNTS = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 300, "audio_tokens": 0},
}


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None}
    logging = {"call_log": str(tmp_path / "calls.jsonl")}
    server = serve_gateway(
        {**IN_PROCESS_CONFIG, "models": ROUTES, "ledger": ledger, "logging": logging}
    )
    yield server
    server.stop()


def claude(server: BackgroundServer, model: str, usage: dict[str, Any], *, stream: bool) -> str:
    """One Messages call through the Anthropic SDK; its request id."""
    client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
    headers = {"x-simulator-usage": json.dumps({**CLAUDE_COUNTS, **usage})}
    if stream:
        with client.messages.stream(
            model=model, max_tokens=50, messages=HI, extra_headers=headers
        ) as events:
            events.get_final_message()
            return str(events.response.headers["request-id"])
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=50, messages=HI, extra_headers=headers
    )
    raw.parse()
    return str(raw.headers["request-id"])


def gpt(
    server: BackgroundServer,
    model: str,
    usage: dict[str, Any],
    *,
    stream: bool,
    **params: Any,
) -> str:
    """One Chat Completions call through the OpenAI SDK; its request id."""
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    headers = {"x-simulator-usage": json.dumps({**GPT_COUNTS, **usage})}
    if stream:
        chunks = client.chat.completions.create(
            model=model,
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
            **params,
        )
        reported = [chunk.usage for chunk in chunks if chunk.usage is not None]
        assert reported[-1].completion_tokens == GPT_COUNTS["completion_tokens"]
        return str(chunks.response.headers["x-request-id"])
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        max_tokens=50,
        messages=HI,  # type: ignore[arg-type]
        extra_headers=headers,
        **params,
    )
    raw.parse()
    return str(raw.headers["x-request-id"])


def ledger_and_log(tmp_path: Path) -> tuple[dict[str, CallRecord], dict[str, dict[str, Any]]]:
    records = {record.request_id: record for record in read_sqlite(tmp_path / "ledger.db")}
    lines = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    return records, {line["request_id"]: line for line in lines}


def cost_lines(tmp_path: Path, day: str, **query: list[str]) -> list[dict[str, Any]]:
    async def report() -> dict[str, Any]:
        store = SQLiteLedgerStore(tmp_path / "ledger.db")
        try:
            return await cost_report(store, {"starting_at": [day], "limit": ["1"], **query})
        finally:
            await store.aclose()

    (bucket,) = asyncio.run(report())["data"]
    results: list[dict[str, Any]] = bucket["results"]
    return results


def usage_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *by: str) -> dict[str, Any]:
    options = [arg for name in by for arg in ("--by", name)]
    assert tollhouse(["usage", "--sqlite", str(tmp_path / "ledger.db"), *options, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def day_of(record: CallRecord) -> str:
    return record.ts.strftime("%Y-%m-%dT00:00:00Z")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_web_search_and_fetch_are_priced_per_use_and_itemized(
    gateway: BackgroundServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    tools = {"server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 2}}
    request_id = claude(gateway, "claude-haiku-4-5", tools, stream=stream)
    gateway.stop()

    # input  1,000 x $1 / 1M = $0.001      output 500 x $5 / 1M = $0.0025
    # search     3 x $0.01   = $0.03       fetch    2 x $0      = $0
    # total                                                     = $0.0335 = 3.35 cents
    records, log = ledger_and_log(tmp_path)
    record = records[request_id]
    assert record.cost_usd == Decimal("0.0335")
    assert (record.web_search_requests, record.web_fetch_requests) == (3, 2)
    assert (record.web_search_cost_usd, record.web_fetch_cost_usd) == (Decimal("0.03"), 0)
    assert record.metadata["server_tool_use"] == {"web_search_requests": 3, "web_fetch_requests": 2}
    assert Decimal(log[request_id]["cost_usd"]) == Decimal("0.0335")
    assert log[request_id]["web_search_requests"] == 3

    items = cost_lines(tmp_path, day_of(record), **{"group_by[]": ["description"]})
    assert [(i["cost_type"], i["token_type"], i["amount"]) for i in items] == [
        ("tokens", "uncached_input_tokens", "0.1"),
        ("tokens", "output_tokens", "0.25"),
        ("web_search", None, "3"),
    ]
    assert sum(Decimal(item["amount"]) for item in items) == Decimal("3.35")

    total = usage_cli(tmp_path, capsys)["total"]
    assert (total["web_search"], total["web_fetch"], total["cost_usd"]) == (3, 2, "0.0335")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_compacted_call_costs_the_sum_of_its_iterations(
    gateway: BackgroundServer, tmp_path: Path, stream: bool
) -> None:
    iterations = [
        {"type": "compaction", "input_tokens": 2000, "output_tokens": 300},
        {
            "type": "message",
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_read_input_tokens": 400,
        },
    ]
    # The top level leaves the compaction step out, as the API's does.
    usage = {"cache_read_input_tokens": 400, "iterations": iterations}
    request_id = claude(gateway, "claude-haiku-4-5", usage, stream=stream)
    gateway.stop()

    # input  3,000 x $1 / 1M    = $0.003     output 800 x $5 / 1M = $0.004
    # cache read 400 x $0.10 / 1M = $0.00004                total = $0.00704
    records, log = ledger_and_log(tmp_path)
    record = records[request_id]
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (3000, 800, 400)
    assert record.cost_usd == Decimal("0.00704")
    assert [step["type"] for step in record.metadata["iterations"]] == ["compaction", "message"]
    assert record.metadata["iterations"][0]["input_tokens"] == 2000
    assert Decimal(log[request_id]["cost_usd"]) == Decimal("0.00704")
    (result,) = cost_lines(tmp_path, day_of(record))
    assert result["amount"] == "0.704"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_us_only_inference_and_fast_mode_stack_on_the_token_rates(
    gateway: BackgroundServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    usage = {"inference_geo": "us", "speed": "fast"}
    request_id = claude(gateway, "claude-opus-4-6", usage, stream=stream)
    plain = claude(gateway, "claude-opus-4-6", {"inference_geo": "global"}, stream=stream)
    gateway.stop()

    # standard: 1,000 x $5 / 1M + 500 x $25 / 1M = $0.0175
    # US-only x1.1, fast x6: $0.0175 x 1.1 x 6   = $0.1155 = 11.55 cents
    records, _ = ledger_and_log(tmp_path)
    record = records[request_id]
    assert record.cost_usd == Decimal("0.1155")
    assert (record.inference_geo, record.speed, record.context_window) == ("us", "fast", "0-200k")
    assert records[plain].cost_usd == Decimal("0.0175")

    by_geo = {row["geo"]: row for row in usage_cli(tmp_path, capsys, "geo", "speed")["rows"]}
    assert by_geo["us"]["speed"] == "fast"
    assert (by_geo["us"]["cost_usd"], by_geo["global"]["cost_usd"]) == ("0.1155", "0.0175")
    grouped = cost_lines(tmp_path, day_of(record), **{"group_by[]": ["inference_geo", "speed"]})
    assert {(r["inference_geo"], r["speed"], r["amount"]) for r in grouped} == {
        ("us", "fast", "11.55"),
        ("global", None, "1.75"),
    }


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_priority_tier_is_in_usage_and_budgets_but_not_in_the_cost_report(
    gateway: BackgroundServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    priority = claude(gateway, "claude-haiku-4-5", {"service_tier": "priority"}, stream=stream)
    standard = claude(gateway, "claude-haiku-4-5", {"service_tier": "standard"}, stream=stream)
    gateway.stop()

    # Each: 1,000 x $1 / 1M + 500 x $5 / 1M = $0.0035 at standard rates.
    records, _ = ledger_and_log(tmp_path)
    assert records[priority].cost_usd == Decimal("0.0035")
    assert (records[priority].service_tier, records[priority].commitment_billed) == (
        "priority",
        True,
    )
    assert records[standard].commitment_billed is False

    (result,) = cost_lines(tmp_path, day_of(records[priority]))
    assert (result["amount"], result["commitment_calls"], result["commitment_amount"]) == (
        "0.35",
        1,
        "0.35",
    )
    by_tier = {row["tier"]: row for row in usage_cli(tmp_path, capsys, "tier")["rows"]}
    assert (by_tier["priority"]["calls"], by_tier["priority"]["input"]) == (1, 1000)
    assert by_tier["priority"]["commitment_calls"] == 1
    assert by_tier["standard"]["cost_usd"] == "0.0035"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_openai_priority_and_flex_tiers_use_their_own_rates(
    gateway: BackgroundServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    priority = gpt(gateway, "gpt-5.4", {"service_tier": "priority"}, stream=stream)
    flex = gpt(gateway, "gpt-5.4", {"service_tier": "flex"}, stream=stream)
    default = gpt(gateway, "gpt-5.4", {}, stream=stream)
    gateway.stop()

    # priority: 800 x $5 + 200 x $0.50 + 500 x $30 (per 1M) = $0.004 + $0.0001 + $0.015
    #                                                       = $0.0191 = 1.91 cents
    # flex:     800 x $1.25 + 200 x $0.125 + 500 x $7.50    = $0.001 + $0.000025 + $0.00375
    #                                                       = $0.004775
    # default:  800 x $2.50 + 200 x $0.25 + 500 x $15       = $0.002 + $0.00005 + $0.0075
    #                                                       = $0.00955
    records, log = ledger_and_log(tmp_path)
    assert records[priority].cost_usd == Decimal("0.0191")
    assert records[flex].cost_usd == Decimal("0.004775")
    assert records[default].cost_usd == Decimal("0.00955")
    # 300 reasoning tokens are inside the 500 billed output tokens.
    assert (records[priority].output_tokens, records[priority].reasoning_tokens) == (500, 300)
    assert [log[r]["service_tier"] for r in (priority, flex, default)] == [
        "priority",
        "flex",
        "default",
    ]
    (result,) = cost_lines(tmp_path, day_of(records[flex]))
    assert result["amount"] == "3.3425"  # 1.91 + 0.4775 + 0.955, OpenAI priority included
    by_tier = {row["tier"]: row["cost_usd"] for row in usage_cli(tmp_path, capsys, "tier")["rows"]}
    assert by_tier == {"default": "0.00955", "flex": "0.004775", "priority": "0.0191"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_openai_search_model_call_pays_one_web_search(
    gateway: BackgroundServer, tmp_path: Path, stream: bool
) -> None:
    request_id = gpt(gateway, "gpt-4o-mini", {}, stream=stream, web_search_options={})
    gateway.stop()

    # 800 x $0.15 + 200 x $0.075 + 500 x $0.60 (per 1M) = $0.00012 + $0.000015 + $0.0003
    # + one search $0.01                                = $0.010435 = 1.0435 cents
    records, _ = ledger_and_log(tmp_path)
    record = records[request_id]
    assert (record.web_search_requests, record.cost_usd) == (1, Decimal("0.010435"))
    items = cost_lines(tmp_path, day_of(record), **{"group_by[]": ["description"]})
    assert ("web_search", "1") in [(i["cost_type"], i["amount"]) for i in items]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_usage_without_a_price_is_recorded_and_flagged_never_zero(
    gateway: BackgroundServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    tool = {"server_tool_use": {"code_execution_requests": 2}}
    unknown_tool = claude(gateway, "claude-haiku-4-5", tool, stream=stream)
    audio = {"prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 100}}
    unpriced_audio = gpt(gateway, "gpt-4o-mini", audio, stream=stream)
    flagged = metric(gateway.url, "tollhouse_unpriced_lines_total", line="server_tool_use")
    gateway.stop()

    records, log = ledger_and_log(tmp_path)
    record = records[unknown_tool]
    assert record.cost_usd is None
    assert record.metadata["unpriced"] == ["server_tool_use.code_execution_requests"]
    assert record.metadata["server_tool_use"] == {"code_execution_requests": 2}
    assert record.input_cost_usd == Decimal("0.001")  # the known lines stay recorded
    assert log[unknown_tool]["cost_usd"] is None
    assert flagged == 1
    assert records[unpriced_audio].cost_usd is None
    assert records[unpriced_audio].audio_input_tokens == 100
    assert records[unpriced_audio].metadata["unpriced"] == ["tokens.audio_input"]
    total = usage_cli(tmp_path, capsys)["total"]
    assert (total["cost_usd"], total["unpriced_calls"]) == ("0", 2)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_openai_client_on_a_claude_route_is_billed_on_claude_s_lines(
    gateway: BackgroundServer, tmp_path: Path, stream: bool
) -> None:
    # The OpenAI client's usage chunk has no place for them; the ledger keeps them.
    usage = {**CLAUDE_COUNTS, "server_tool_use": {"web_search_requests": 2}}
    request_id = gpt(gateway, "claude-haiku-4-5", usage, stream=stream)
    gateway.stop()

    # 1,000 x $1 / 1M + 500 x $5 / 1M + 2 x $0.01 = $0.0235
    records, _ = ledger_and_log(tmp_path)
    record = records[request_id]
    assert (record.web_search_requests, record.cost_usd) == (2, Decimal("0.0235"))
