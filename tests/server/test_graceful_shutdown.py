"""SIGTERM keeps its promise for calls longer than the drain: a real `tollhouse serve` whose
upstream (the simulator) is slower than `server.drain_seconds` ends each call still running
with a proper error in its client's format (a whole call: 529/503 JSON; a stream: an error
event that ends it), records it and settles it, then exits."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import redis
from tests.serve_process import ServeProcess
from tests.support import TEST_RELIABILITY

DRAIN = 1.5


def slow(fmt: str, **pace: float) -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": fmt, **pace}}


def config(tmp_path: Path, redis_url: str, prefix: str) -> dict[str, Any]:
    whole = {"ttft_ms": 30_000}  # the answer starts long after the drain is over
    stream = {"ttft_ms": 10, "tokens_per_second": 5, "reply_tokens": 150}  # a 30 s stream
    return {
        "server": {"drain_seconds": DRAIN},
        "providers": {
            "whole-a": slow("anthropic", **whole),
            "whole-o": slow("openai", **whole),
            "stream-a": slow("anthropic", **stream),
            "stream-o": slow("openai", **stream),
        },
        "models": {
            name: {"deployments": [{"provider": name, "model": "m"}]}
            for name in ("whole-a", "whole-o", "stream-a", "stream-o")
        },
        "timeouts": {"first_byte": 60, "read_idle": 60, "total": 120},
        "reliability": TEST_RELIABILITY,
        "counters": {"backend": "redis", "redis_url": redis_url, "prefix": prefix},
        "spend": {"global_limits": {"concurrency": 50}},
        "ledger": {
            "sqlite_path": str(tmp_path / "ledger.db"),
            "spill_path": str(tmp_path / "ledger.spill"),
        },
    }


def held_leases(redis_url: str, prefix: str) -> int:
    """Concurrency leases held under `prefix` (one sorted set per limit, a member per call)."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k for k in client.scan_iter(match=prefix + "*") if client.type(k) == b"zset"]
        return sum(int(client.zcard(k)) for k in keys)
    finally:
        client.close()


def stream_events(url: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    with httpx.stream("POST", url + path, json=body, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        return response.read().decode()


def test_calls_longer_than_the_drain_end_in_errors_that_are_recorded_and_settled(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    outcomes: dict[str, Any] = {}

    def whole_anthropic(url: str) -> None:
        client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0, timeout=60)
        try:
            client.messages.create(model="whole-a", max_tokens=50, messages=hi)  # type: ignore[arg-type]
        except anthropic.APIStatusError as error:
            outcomes["whole-a"] = (error.status_code, error.body)

    def whole_openai(url: str) -> None:
        client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=60)
        try:
            client.chat.completions.create(model="whole-o", messages=hi)  # type: ignore[arg-type]
        except openai.APIStatusError as error:
            outcomes["whole-o"] = (error.status_code, error.body)

    def stream_anthropic(url: str) -> None:
        body = {"model": "stream-a", "max_tokens": 50, "stream": True, "messages": hi}
        outcomes["stream-a"] = stream_events(
            url, "/v1/messages", body, {"anthropic-version": "2023-06-01"}
        )

    def stream_openai(url: str) -> None:
        body = {"model": "stream-o", "stream": True, "messages": hi}
        outcomes["stream-o"] = stream_events(url, "/v1/chat/completions", body, {})

    with ServeProcess(tmp_path, config(tmp_path, redis_url, redis_prefix)) as gateway:
        gateway.wait_ready()
        threads = [
            threading.Thread(target=call, args=(gateway.url,))
            for call in (whole_anthropic, whole_openai, stream_anthropic, stream_openai)
        ]
        for thread in threads:
            thread.start()
        time.sleep(2.0)  # all four in flight: the whole ones waiting, the streams flowing
        assert held_leases(redis_url, redis_prefix) >= 4  # at least one per call
        gateway.process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert gateway.wait_exit(30) in (0, -signal.SIGTERM)
        took = time.monotonic() - began
        for thread in threads:
            thread.join(10)

    assert DRAIN <= took < DRAIN + 8, took
    status, body = outcomes["whole-a"]
    assert status == 529
    assert body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error"
    assert "server.drain_seconds" in body["error"]["message"]
    status, body = outcomes["whole-o"]
    assert status == 503
    assert "server.drain_seconds" in body["message"]
    anthropic_events = outcomes["stream-a"].strip().split("\n\n")
    assert anthropic_events[0].startswith("event: message_start")
    assert anthropic_events[-1].startswith("event: error")
    error = json.loads(anthropic_events[-1].split("data: ", 1)[1])
    assert error["error"]["type"] == "overloaded_error"
    openai_events = outcomes["stream-o"].strip().split("\n\n")
    assert len(openai_events) > 1
    assert (
        "server.drain_seconds" in json.loads(openai_events[-1][len("data: ") :])["error"]["message"]
    )

    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = dict(db.execute("SELECT model_requested, status FROM calls").fetchall())
    # A stream's record takes the status its error event stands for (stages/account.py):
    # OpenAI's server_error is a 500.
    assert rows == {"whole-a": 529, "whole-o": 503, "stream-a": 529, "stream-o": 500}, rows
    # Every call settled: no concurrency lease is left held in Redis.
    assert held_leases(redis_url, redis_prefix) == 0
    assert "Traceback" not in gateway.log
