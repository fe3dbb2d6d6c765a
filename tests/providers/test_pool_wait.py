"""No silent queue at the upstream pool: by default a provider's connections are not capped
(each call in flight gets one), and with a cap (`max_connections`) a call that waits for a
free connection is counted in /metrics, logged, and says how long in its ledger record and
call log line. Through the official SDKs, against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.test_call_ledger import read_sqlite
from tests.support import GATEWAY_KEY, TEST_RELIABILITY, serve_gateway

HI = [{"role": "user", "content": "hi"}]
# Each call's first token comes this late, so two calls started together overlap.
SLOW = {"x-simulator-ttft-ms": "400"}


def pooled_gateway(tmp_path: Path, simulator_url: str, max_connections: int | None) -> Any:
    cap = {} if max_connections is None else {"max_connections": max_connections}
    provider = {"base_url": simulator_url, "simulator_headers": True, **cap}
    return serve_gateway(
        {
            "providers": {
                "anthropic-http": {"type": "anthropic", **provider},
                "openai-http": {"type": "openai", **provider, "base_url": simulator_url + "/v1"},
            },
            "models": {
                "claude-haiku-4-5": {
                    "deployments": [{"provider": "anthropic-http", "model": "claude-haiku-4-5"}]
                },
                "gpt-4o-mini": {
                    "deployments": [{"provider": "openai-http", "model": "gpt-4o-mini"}]
                },
            },
            "timeouts": {"first_byte": 30.0, "read_idle": 30.0},
            "reliability": TEST_RELIABILITY,
            "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
            "logging": {"call_log": str(tmp_path / "calls.jsonl")},
        }
    )


async def two_anthropic_streams(url: str) -> list[str]:
    client = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)

    async def one() -> str:
        async with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=30, messages=HI, extra_headers=SLOW
        ) as stream:
            return await stream.get_final_text()

    try:
        return await asyncio.gather(one(), one())
    finally:
        await client.close()


async def two_openai_streams(url: str) -> list[str]:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)

    async def one() -> str:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,  # type: ignore[arg-type]
            stream=True,
            extra_headers=SLOW,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    try:
        return await asyncio.gather(one(), one())
    finally:
        await client.close()


def call_log(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_a_call_that_waits_for_a_capped_pool_is_counted_logged_and_recorded(
    tmp_path: Path, simulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = pooled_gateway(tmp_path, simulator_url, max_connections=1)
    try:
        with caplog.at_level(logging.WARNING, logger="tollhouse.upstream"):
            texts = asyncio.run(two_anthropic_streams(server.url))
        waits = metric(server.url, "tollhouse_upstream_pool_waits_total", provider="anthropic-http")
        waited = metric(
            server.url, "tollhouse_upstream_pool_wait_seconds_total", provider="anthropic-http"
        )
        busy = metric(server.url, "tollhouse_upstream_connections", provider="anthropic-http")
    finally:
        server.stop()
    assert len(texts) == 2
    assert all(texts)
    # one call had the connection, the other waited for it: about the first one's length
    assert waits == 1.0
    assert waited >= 0.2
    assert busy == 1.0  # the one connection, idle again
    records = read_sqlite(tmp_path / "ledger.db")
    waits_ms = sorted((r.pool_wait_ms for r in records), key=lambda w: w or 0.0)
    assert waits_ms[0] is None
    assert waits_ms[1] is not None
    assert waits_ms[1] >= 200.0
    logged = {line["request_id"]: line.get("pool_wait_ms") for line in call_log(tmp_path)}
    assert logged == {r.request_id: r.pool_wait_ms for r in records}
    lines = [r.getMessage() for r in caplog.records if "upstream_pool_wait" in r.getMessage()]
    assert len(lines) == 1
    assert "provider=anthropic-http" in lines[0]
    assert "max_connections=1" in lines[0]


def test_by_default_no_call_waits_for_an_upstream_connection(
    tmp_path: Path, simulator_url: str
) -> None:
    server = pooled_gateway(tmp_path, simulator_url, max_connections=None)
    try:
        texts = asyncio.run(two_openai_streams(server.url))
        waits = metric(server.url, "tollhouse_upstream_pool_waits_total", provider="openai-http")
        idle = metric(
            server.url, "tollhouse_upstream_connections", provider="openai-http", state="idle"
        )
    finally:
        server.stop()
    assert len(texts) == 2
    assert all(texts)
    assert waits == 0.0
    assert idle == 2.0  # each call had its own connection, both kept for reuse
    records = read_sqlite(tmp_path / "ledger.db")
    assert [r.pool_wait_ms for r in records] == [None, None]
    assert [line["pool_wait_ms"] for line in call_log(tmp_path)] == [None, None]
