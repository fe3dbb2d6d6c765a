"""A PostgreSQL ledger that stalls (connections open, nothing answered) is noticed in
seconds: /readyz says so, the records go to the spill file instead of piling up in memory,
and once the database answers again they all reach it. The stall is a proxy the test
controls in front of the real server, never the shared server itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tests.observability.test_call_accounting import metric
from tests.ports.ledger.tcp_proxy import proxy_thread
from tests.serve_process import ServeProcess
from tests.support import IN_PROCESS_CONFIG

HI: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]


def ledger_rows(conninfo: str) -> int:
    with psycopg.connect(conninfo) as db:
        row = db.execute("SELECT count(*) FROM calls").fetchone()
    return int(row[0]) if row else 0


def wait_for(condition: Callable[[], bool], timeout: float, what: str, url: str) -> float:
    """Seconds until `condition()` held; fails after `timeout`, with the gateway's state."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    ledger = [line for line in httpx.get(url + "/metrics").text.splitlines() if "ledger" in line]
    state = httpx.get(url + "/readyz").text
    raise AssertionError(f"{what}: not within {timeout} s; /readyz {state}; " + "; ".join(ledger))


def test_a_stalled_postgres_is_reported_within_seconds_and_loses_no_record(
    tmp_path: Path, postgres_conninfo: str
) -> None:
    target = conninfo_to_dict(postgres_conninfo)
    host, port = str(target.get("host", "127.0.0.1")), int(target.get("port", 5432))
    with proxy_thread(host, port) as proxy:
        config = {
            **IN_PROCESS_CONFIG,
            "ledger": {
                "backend": "postgres",
                "postgres": "env:TH_TEST_LEDGER_DSN",
                "spill_path": str(tmp_path / "ledger.spill"),
            },
        }
        dsn = make_conninfo(postgres_conninfo, port=proxy.port)
        with ServeProcess(tmp_path, config, env={"TH_TEST_LEDGER_DSN": dsn}) as gateway:
            gateway.wait_ready()
            client = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)
            calls = 0

            def call_some(n: int) -> None:
                nonlocal calls
                for _ in range(n):
                    client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
                    calls += 1

            call_some(20)
            wait_for(
                lambda: ledger_rows(postgres_conninfo) == 20,
                15,
                "first records written",
                gateway.url,
            )

            proxy.stall()
            stalled_at = time.monotonic()
            call_some(50)  # answered at once: the ledger is off the request path

            def ledger_reported() -> bool:
                doc = httpx.get(gateway.url + "/readyz").json()
                return doc["status"] == "degraded" and "ledger" in doc.get("problems", {})

            wait_for(ledger_reported, 10, "/readyz reports the stalled ledger", gateway.url)
            assert time.monotonic() - stalled_at < 10
            wait_for(
                lambda: metric(gateway.url, "tollhouse_ledger_records_total", fate="spilled") >= 50,
                15,
                "the records written while stalled are spilled",
                gateway.url,
            )
            assert metric(gateway.url, "tollhouse_ledger_queue_depth", sink="ledger") == 0
            assert metric(gateway.url, "tollhouse_ledger_store_up", sink="ledger") == 0

            proxy.resume()
            call_some(10)
            wait_for(
                lambda: ledger_rows(postgres_conninfo) == calls, 30, "records replayed", gateway.url
            )
            wait_for(
                lambda: httpx.get(gateway.url + "/readyz").json()["status"] == "ready",
                15,
                "/readyz ready again",
                gateway.url,
            )
            assert gateway.stop() in (0, -15)
    assert ledger_rows(postgres_conninfo) == calls == 80
    assert "Traceback" not in gateway.log
