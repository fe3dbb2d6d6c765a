"""Limits and budgets hold across gateway processes: four real `tollhouse serve` processes
sharing one Redis behave as one gateway, and a gateway that can't reach its counter store
fails open or closed as configured.

The Redis tests use a key prefix of their own, deleted afterwards; without a Redis server
they skip locally and fail under CI (CI=true), as the counter store tests do.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from tests.observability.test_call_accounting import metric
from tests.stages.test_keys_limits_budgets import create_key
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.config.model import Budget
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.runner import free_port

HI: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
PROCESSES = 4
RPM = 100
BURST = 400
REFILL_SECONDS = 60 / RPM  # a token bucket of 100/min gains one token every 0.6 s

# $100 per million output tokens... times 400: max_tokens=10 costs $0.04 of output, and the
# input ("hi", a handful of tokens) a tenth of a cent; the simulator's 60-token answer is
# cut at max_tokens, so a call costs what admission reserved for it, about $0.041.
PRICEY_MODEL = {
    "id": "pricey-model",
    "provider": "anthropic",
    "display_name": "Pricey",
    "context_window": 200000,
    "max_output_tokens": 8192,
    "released": "2026-01-01",
    "pricing": {"input": "100", "output": "4000"},
}
PRICEY_MAX_TOKENS = 10


# --- gateway processes ------------------------------------------------------------------


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    ledger: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_gateways(tmp_path: Path, config: dict[str, Any]) -> list[Gateway]:
    """`PROCESSES` gateway processes on `config`, each with a ledger file of its own, ready."""
    gateways = []
    for n in range(PROCESSES):
        ledger = tmp_path / f"ledger-{n}.db"
        conf = tmp_path / f"gateway-{n}.yaml"
        own = {"ledger": {"sqlite_path": str(ledger), "spill_path": str(tmp_path / f"spill-{n}")}}
        conf.write_text(json.dumps({**config, **own}))  # JSON is YAML
        port = free_port()
        log = tmp_path / f"gateway-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tollhouse", "serve", "-c", str(conf), "-p", str(port)],
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        gateways.append(Gateway(process, port, ledger, log))
    try:
        for gateway in gateways:
            wait_ready(gateway)
    except BaseException:
        stop_gateways(gateways)
        raise
    return gateways


def wait_ready(gateway: Gateway, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"gateway exited: {gateway.log.read_text()[-2000:]}")
        try:
            if httpx.get(gateway.url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway not ready within {timeout} s: {gateway.log.read_text()[-2000:]}")


def stop_gateways(gateways: list[Gateway]) -> None:
    """SIGTERM: a clean shutdown drains each ledger's queue into its file."""
    for gateway in gateways:
        if gateway.process.poll() is None:
            gateway.process.send_signal(signal.SIGTERM)
    for gateway in gateways:
        try:
            gateway.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()


def read_ledger(path: Path) -> list[CallRecord]:
    async def main() -> list[CallRecord]:
        store = SQLiteLedgerStore(path)
        try:
            return await store.query(limit=100_000, newest_first=False)
        finally:
            await store.aclose()

    return asyncio.run(main())


def shared_config(redis_url: str, prefix: str, **sections: Any) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        # Fail closed with a generous timeout: a busy CI machine must not turn a slow
        # connection into an admission the limit never saw.
        "counters": {
            "backend": "redis",
            "redis_url": redis_url,
            "prefix": prefix,
            "timeout_seconds": 5.0,
            "on_unavailable": "closed",
        },
        **sections,
    }


# --- one global rate limit --------------------------------------------------------------


@dataclass
class Attempt:
    sent: float
    done: float
    error: Exception | None


async def burst(urls: list[str]) -> list[Attempt]:
    clients = [
        anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0) for url in urls
    ]

    async def attempt(client: anthropic.AsyncAnthropic) -> Attempt:
        sent = time.monotonic()
        try:
            await client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
        except anthropic.APIError as error:
            return Attempt(sent, time.monotonic(), error)
        return Attempt(sent, time.monotonic(), None)

    try:
        return await asyncio.gather(*(attempt(clients[i % len(clients)]) for i in range(BURST)))
    finally:
        for client in clients:
            await client.close()


def test_a_global_rpm_limit_admits_exactly_its_capacity_across_four_processes(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = shared_config(redis_url, redis_prefix, spend={"global_limits": {"rpm": RPM}})
    gateways = start_gateways(tmp_path, config)
    try:
        attempts = asyncio.run(burst([g.url for g in gateways]))
    finally:
        stop_gateways(gateways)

    admitted = [a for a in attempts if a.error is None]
    refused = [a.error for a in attempts if a.error is not None]
    # The window in which tokens could refill: from the first request sent (before the
    # first admission) to the last answer (after the last admission).
    window = max(a.done for a in attempts) - min(a.sent for a in attempts)
    if window <= REFILL_SECONDS:
        case = f"burst within {window:.2f} s <= {REFILL_SECONDS} s: exactly {RPM}"
        assert len(admitted) == RPM, f"{case}; admitted {len(admitted)}"
    else:
        refill = int(window / REFILL_SECONDS)
        case = f"burst took {window:.2f} s: between {RPM} and {RPM} + {refill} refilled"
        assert RPM <= len(admitted) <= RPM + refill, f"{case}; admitted {len(admitted)}"
    assert len(refused) == BURST - len(admitted), case
    for error in refused:
        assert isinstance(error, anthropic.RateLimitError), repr(error)
        assert error.status_code == 429
        assert "retry-after" in error.response.headers
        assert error.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


# --- one budget -------------------------------------------------------------------------


def test_a_key_budget_shared_by_four_processes_stops_spend_just_below_its_cap(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    keys = tmp_path / "keys.db"
    _, secret = create_key(keys, budget=Budget(daily_usd=Decimal("1.00")))
    config = shared_config(
        redis_url,
        redis_prefix,
        keys={"required": True, "sqlite_path": str(keys)},
        catalog={"models": [PRICEY_MODEL]},
        models={
            **IN_PROCESS_CONFIG["models"],
            "pricey": {"deployments": [{"provider": "sim-anthropic", "model": "pricey-model"}]},
        },
    )
    gateways = start_gateways(tmp_path, config)
    try:
        admitted, refusals = asyncio.run(spend_until_refused([g.url for g in gateways], secret))
    finally:
        stop_gateways(gateways)

    records = [record for g in gateways for record in read_ledger(g.ledger)]
    spend = sum((r.cost_usd or Decimal(0) for r in records), Decimal(0))
    assert Decimal("0.95") <= spend <= Decimal("1.00"), f"spent {spend} over {admitted} calls"
    assert refusals, "no call was refused"
    for error in refusals:
        assert isinstance(error, anthropic.EnforcedSpendLimitReachedError), repr(error)
        assert error.response.headers["x-should-retry"] == "false"
    # Clients with max_retries=2 asked the gateways once per refusal: no retries were spent.
    assert sum(r.status == 429 for r in records) == len(refusals)
    assert sum(r.status == 200 for r in records) == admitted


async def spend_until_refused(urls: list[str], secret: str) -> tuple[int, list[Exception]]:
    """Calls from 4 workers per gateway, each until refused; then, with nothing in flight,
    one call at a time until refused, so the budget is known to hold less than one more
    call's worst case. (admitted calls, refusals)."""
    clients = [
        anthropic.AsyncAnthropic(base_url=url, api_key=secret, max_retries=2) for url in urls
    ]
    admitted = 0
    refusals: list[Exception] = []

    async def call(client: anthropic.AsyncAnthropic) -> bool:
        nonlocal admitted
        try:
            await client.messages.create(model="pricey", max_tokens=PRICEY_MAX_TOKENS, messages=HI)
        except anthropic.RateLimitError as error:
            refusals.append(error)
            return False
        admitted += 1
        return True

    async def worker(client: anthropic.AsyncAnthropic) -> None:
        for _ in range(100):
            if not await call(client):
                return

    try:
        await asyncio.gather(*(worker(client) for client in clients for _ in range(4)))
        for n in range(100):
            if not await call(clients[n % len(clients)]):
                break
        await asyncio.sleep(0.2)  # settling happens after the answer: let it land
    finally:
        for client in clients:
            await client.close()
    return admitted, refusals


# --- counter store unavailable ----------------------------------------------------------


def unreachable_counters(on_unavailable: str) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "counters": {
            "backend": "redis",
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "prefix": f"th_test:{uuid.uuid4().hex[:12]}:",
            "on_unavailable": on_unavailable,
        },
        "spend": {"global_limits": {"rpm": RPM}},
    }


def test_with_counters_unreachable_fail_open_admits_calls_and_reports_counters_down() -> None:
    server = serve_gateway(unreachable_counters("open"))
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        for _ in range(3):
            message = client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
            assert message.content
        assert metric(server.url, "tollhouse_counters_up") == 0
    finally:
        server.stop()


def test_with_counters_unreachable_fail_closed_refuses_calls_with_503() -> None:
    server = serve_gateway(unreachable_counters("closed"))
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        with pytest.raises(anthropic.InternalServerError) as refused:
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
        assert metric(server.url, "tollhouse_counters_up") == 0
    finally:
        server.stop()
    assert refused.value.status_code == 503
    assert "can't check rate limits" in refused.value.message
    assert refused.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("on_unavailable", "status", "state"),
    [("open", 200, "degraded"), ("closed", 503, "unavailable")],
)
def test_readyz_reports_unreachable_counters_before_any_call(
    on_unavailable: str, status: int, state: str
) -> None:
    server = serve_gateway(unreachable_counters(on_unavailable))
    try:
        deadline = time.monotonic() + 5
        ready = httpx.get(server.url + "/readyz")
        while ready.json()["status"] == "ready" and time.monotonic() < deadline:
            time.sleep(0.05)
            ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == status
        assert ready.json()["status"] == state
        assert "counters" in ready.json()["problems"]
    finally:
        server.stop()
