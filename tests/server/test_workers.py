"""`tollhouse serve --workers N`: N processes on one port sharing Redis counters and the
ledger, each with a spill file of its own, drained as one on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx
from tests.serve_process import ServeProcess
from tests.stages.test_limits_across_processes import (
    BURST,
    REFILL_SECONDS,
    RPM,
    burst,
    shared_config,
)
from tests.support import IN_PROCESS_CONFIG

WORKERS = 2


def workers_of(gateway: ServeProcess) -> list[int]:
    pid = gateway.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def ledger_statuses(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT status FROM calls")]


def test_an_rpm_limit_holds_exactly_across_two_workers_sharing_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = {
        **shared_config(redis_url, redis_prefix, spend={"global_limits": {"rpm": RPM}}),
        **own_ledger(tmp_path),
    }
    with ServeProcess(tmp_path, config, "--workers", str(WORKERS)) as gateway:
        gateway.wait_ready()
        assert len(workers_of(gateway)) == WORKERS
        # Clients of their own each, so their connections land on both workers.
        attempts = asyncio.run(burst([gateway.url] * 8))
        assert gateway.stop() == 0
    admitted = sum(a.error is None for a in attempts)
    window = max(a.done for a in attempts) - min(a.sent for a in attempts)
    refill = int(window / REFILL_SECONDS)
    assert RPM <= admitted <= RPM + refill, f"admitted {admitted} in {window:.2f} s"
    assert all(isinstance(a.error, anthropic.RateLimitError) for a in attempts if a.error)
    assert sorted(p.name for p in tmp_path.glob("*.spill")) == ["ledger.1.spill", "ledger.spill"]
    statuses = ledger_statuses(tmp_path / "ledger.db")
    assert len(statuses) == BURST
    assert statuses.count(200) == admitted
    assert "PER-PROCESS LIMITS" not in gateway.log


def test_workers_on_in_process_counters_say_limits_are_per_process(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, {**IN_PROCESS_CONFIG, **own_ledger(tmp_path)}, "-w", "2") as gw:
        gw.wait_ready()
        assert gw.stop() == 0
    assert "PER-PROCESS LIMITS: counters.backend is in_process" in gw.log
    assert "Traceback" not in gw.log


def test_a_start_up_failure_with_workers_is_one_line_and_no_worker_runs(tmp_path: Path) -> None:
    config = {"ledger": {"spill_path": str(tmp_path / "missing" / "ledger.spill")}}
    gateway = ServeProcess(tmp_path, config, "--workers", "3")
    assert gateway.wait_exit() == 2
    assert gateway.log.splitlines() == [
        f"tollhouse: config error: ledger.spill_path: cannot open "
        f"{tmp_path / 'missing' / 'ledger.spill'}: No such file or directory"
    ]


def own_ledger(tmp_path: Path) -> dict[str, Any]:
    return {
        "ledger": {
            "sqlite_path": str(tmp_path / "ledger.db"),
            "spill_path": str(tmp_path / "ledger.spill"),
        }
    }


def test_sigterm_under_load_drains_every_worker_and_loses_no_record(tmp_path: Path) -> None:
    """Calls take over a second each; SIGTERM comes while up to 96 are in flight over both
    workers, and more keep coming. Every call the gateway took is answered, and every
    answer has its record."""
    slow = {"type": "simulator", "simulator": {"ttft_ms": 600, "tokens_per_second": 60}}
    config = {
        **IN_PROCESS_CONFIG,
        "providers": {
            "sim-anthropic": slow,
            "sim-openai": {**slow, "simulator": {**slow["simulator"], "format": "openai"}},
        },
        **own_ledger(tmp_path),
    }
    outcomes: list[str] = []
    with ServeProcess(tmp_path, config, "--workers", str(WORKERS)) as gateway:
        gateway.wait_ready()
        in_flight = threading.Event()

        async def call(client: httpx.AsyncClient, n: int) -> str:
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 40,
                "stream": n % 2 == 0,
                "messages": [{"role": "user", "content": f"question {n}"}],
            }
            try:
                response = await client.post("/v1/messages", json=body)
            except httpx.TransportError:
                return "not taken"
            return f"status {response.status_code}" + (
                " complete" if response.text.rstrip().endswith(("}", "data: [DONE]")) else ""
            )

        async def load() -> None:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30, limits=limits) as client:
                first = [asyncio.ensure_future(call(client, n)) for n in range(96)]
                await asyncio.sleep(0.3)
                in_flight.set()
                await asyncio.sleep(0.2)
                later = [asyncio.ensure_future(call(client, n)) for n in range(96, 128)]
                outcomes.extend(await asyncio.gather(*first, *later))

        loader = threading.Thread(target=asyncio.run, args=(load(),))
        loader.start()
        in_flight.wait(10)
        gateway.process.send_signal(signal.SIGTERM)
        loader.join(60)
        assert gateway.wait_exit(40) == 0
    # A call is either answered whole or never taken (its connection not yet accepted when
    # the socket closed): nothing is cut, nothing ends in an error.
    answered = [o for o in outcomes if o.startswith("status")]
    assert set(outcomes) <= {"status 200 complete", "not taken"}, Counter(outcomes)
    assert len(answered) >= 48, Counter(outcomes)
    statuses = ledger_statuses(tmp_path / "ledger.db")
    assert len(statuses) == len(answered), (len(statuses), outcomes)
    assert statuses.count(200) == sum(o.startswith("status 200") for o in outcomes)
    assert "Traceback" not in gateway.log
