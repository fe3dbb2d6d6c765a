"""The account stage records what the client saw: a stream that ends in an error event is a
failed call in the ledger, in /metrics, in `tollhouse logs --errors-only` and to the alerts."""

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
from tests.server.stream_upstream import START
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.cli import main as tollhouse
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.reports import cost_report
from tollhouse.server.runner import BackgroundServer
from tollhouse.wire.sse import frame_json

HI = [{"role": "user", "content": "tell me a long story"}]


def gateway_with_ledger(tmp_path: Path, **sections: object) -> BackgroundServer:
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None}
    return serve_gateway({**IN_PROCESS_CONFIG, "ledger": ledger, **sections})


def break_anthropic_stream(url: str, fault: str | None, model: str = "claude-haiku-4-5") -> str:
    """Stream through the Anthropic SDK until the simulator's `fault` (or the upstream
    itself, when None) breaks it; the call's request id."""
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    faults = {"x-simulator-fault": fault} if fault else None
    with client.messages.stream(
        model=model, max_tokens=200, messages=HI, extra_headers=faults
    ) as stream:
        request_id = stream.response.headers["request-id"]
        with pytest.raises(anthropic.APIStatusError):
            stream.until_done()
    return request_id


def break_openai_stream(url: str, fault: str, model: str = "gpt-4o-mini") -> str:
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model=model,
        messages=HI,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-simulator-fault": fault},
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    return stream.response.headers["x-request-id"]


def test_a_stream_ending_in_an_error_event_is_recorded_as_the_error_the_client_saw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = gateway_with_ledger(tmp_path)
    try:
        upstream_error = break_anthropic_stream(server.url, "mid-stream-error")
        reset = break_openai_stream(server.url, "mid-stream-reset")
        translated = break_openai_stream(server.url, "mid-stream-error", model="claude-haiku-4-5")
        anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY).messages.create(
            model="claude-haiku-4-5", max_tokens=20, messages=HI, stream=False
        )
        calls_by_status = {
            status: metric(server.url, "tollhouse_calls_total", status=status)
            for status in ("200", "500", "529")
        }
    finally:
        server.stop()
    records = {r.request_id: r for r in read_sqlite(tmp_path / "ledger.db")}
    assert len(records) == 4
    # The Anthropic upstream's own overloaded_error event, relayed as it came.
    assert (records[upstream_error].status, records[upstream_error].error_type) == (
        529,
        "overloaded_error",
    )
    # The connection broke: the gateway ended the stream with its own error event.
    assert (records[reset].status, records[reset].error_type) == (500, "server_error")
    # Anthropic's overloaded_error translated for an OpenAI client: the type it saw.
    assert (records[translated].status, records[translated].error_type) == (500, "server_error")
    assert calls_by_status == {"200": 1.0, "500": 2.0, "529": 1.0}

    assert (
        tollhouse(["logs", "--sqlite", str(tmp_path / "ledger.db"), "--errors-only", "--json"]) == 0
    )
    listed = {json.loads(line)["request_id"] for line in capsys.readouterr().out.splitlines()}
    assert listed == {upstream_error, reset, translated}


def test_broken_streams_raise_the_error_spike_alert(tmp_path: Path) -> None:
    server = gateway_with_ledger(
        tmp_path, alerts={"error_spike": {"min_calls": 4, "error_rate": 0.5}}
    )
    try:
        for _ in range(4):
            break_anthropic_stream(server.url, "mid-stream-reset")
        assert metric(server.url, "tollhouse_alert_active", kind="error_spike") == 1
    finally:
        server.stop()


def test_calls_refused_before_any_upstream_cost_nothing_in_usage_logs_and_the_cost_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"
    server = gateway_with_ledger(
        tmp_path, spend={"global_limits": {"rpm": 1}}, limits={"input": {"max_messages": 1}}
    )
    claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
    try:
        answered = claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.RateLimitError):  # the gateway's own rpm limit
            claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.NotFoundError):  # no such route
            claude.messages.create(model="no-such-model", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.BadRequestError):  # over an input limit
            claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=HI * 3)
    finally:
        server.stop()
    records = read_sqlite(db)
    assert [r.status for r in records] == [200, 429, 404, 400]
    spent = records[0].cost_usd
    assert spent is not None
    assert spent > 0
    assert answered.usage.output_tokens == records[0].output_tokens
    assert [r.cost_usd for r in records[1:]] == [Decimal(0)] * 3

    assert tollhouse(["usage", "--sqlite", str(db), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert (total["calls"], total["cost_usd"], total["unpriced_calls"]) == (4, str(spent), 0)

    assert tollhouse(["logs", "--sqlite", str(db)]) == 0
    table = capsys.readouterr().out
    assert "unpriced" not in table
    assert tollhouse(["logs", "--sqlite", str(db), "--json"]) == 0
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Decimal(row["cost_usd"]) for row in logged] == [spent, 0, 0, 0]

    async def report() -> dict[str, Any]:
        store = SQLiteLedgerStore(db)
        try:
            day = records[0].ts.strftime("%Y-%m-%dT00:00:00Z")
            return await cost_report(store, {"starting_at": [day], "limit": ["1"]})
        finally:
            await store.aclose()

    (bucket,) = asyncio.run(report())["data"]
    (result,) = bucket["results"]
    assert result["unpriced_calls"] == 0
    assert Decimal(result["amount"]) == spent * 100  # cents


class SplitErrorUpstream:
    """An Anthropic upstream whose stream starts, then sends its `overloaded_error` event cut
    in two halves that reach the gateway as two chunks."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
        events = [
            frame_json("message_start", START),
            frame_json(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            frame_json("content_block_delta", {**delta, "delta": {**delta["delta"], "text": "hi"}}),
        ]
        failure = frame_json("error", error)
        for body in (*events, failure[:8], failure[8:]):
            await send({"type": "http.response.body", "body": body, "more_body": True})
            await asyncio.sleep(0.05)  # each its own read at the gateway
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_an_error_event_split_over_two_chunks_is_still_the_error_recorded(
    tmp_path: Path,
) -> None:
    with BackgroundServer(SplitErrorUpstream()) as upstream:
        server = gateway_with_ledger(
            tmp_path,
            providers={"split": {"type": "anthropic", "base_url": upstream.url}},
            models={"split": {"deployments": [{"provider": "split", "model": "split"}]}},
        )
        try:
            request_id = break_anthropic_stream(server.url, None, model="split")
        finally:
            server.stop()
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.request_id == request_id
    assert (record.status, record.error_type) == (529, "overloaded_error")
