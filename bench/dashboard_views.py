#!/usr/bin/env python3
"""How fast the dashboard's data endpoints answer on a big ledger (issue 17, item 5).

    .venv/bin/python bench/dashboard_views.py                       # 1,000,000 rows, both stores
    .venv/bin/python bench/dashboard_views.py --rows 100000 --stores sqlite --repeats 5

Generates `--rows` ledger rows spread over the last 30 days (5 models, 200 keys, 5 teams,
10 projects, 5,000 end users, 2 % errors, 5 % truncated, one in ten with prompt text) into
a SQLite file and into a fresh PostgreSQL schema (the server at --postgres), through the
stores' own `write_batch`; then serves each ledger from a gateway (in this process, real
loopback HTTP), signs in to the dashboard and times every view's data endpoint `--repeats`
times, interleaved. Reports p50 and p95 per endpoint and store (target: p95 < 300 ms) in
bench/results/dashboard.md (`--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

TOKEN = "bench-dashboard-token"
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o", "claude-opus-4-1")
BATCH = 5_000


def endpoints(key: str, request_id: str) -> dict[str, str]:
    return {
        "overview 24h": "/dashboard/api/overview?range=24h",
        "overview 7d": "/dashboard/api/overview?range=7d",
        "overview 30d": "/dashboard/api/overview?range=30d",
        "budgets": "/dashboard/api/budgets",
        "lifecycle (30d)": "/dashboard/api/lifecycle",
        "calls, first page": "/dashboard/api/calls",
        "calls, one key": f"/dashboard/api/calls?key={key}",
        "calls, errors": "/dashboard/api/calls?status=errors",
        "calls, search": "/dashboard/api/calls?q=refund",
        "one call": f"/dashboard/api/calls/{request_id}",
    }


def batches(count: int, now: datetime, seed: int = 17) -> Iterator[list[CallRecord]]:
    """The rows in batches, made as they are written (a million records held at once
    would take gigabytes)."""
    rng = random.Random(seed)
    span = 30 * 86400
    batch: list[CallRecord] = []
    for n in range(count):
        status = 500 if rng.random() < 0.02 else 200
        stream = rng.random() < 0.5
        latency = rng.lognormvariate(6.5, 0.8)
        text = f"user: please help with refund {n}" if n % 10 == 0 else None
        batch.append(
            CallRecord(
                request_id=f"th_bench_{n:08d}",
                ts=now - timedelta(seconds=span * (1 - n / count)),
                client_format="anthropic",
                endpoint="/v1/messages",
                model_requested=MODELS[n % len(MODELS)],
                model_served=MODELS[n % len(MODELS)],
                provider="anthropic",
                route=MODELS[n % len(MODELS)],
                status=status,
                error_type="api_error" if status >= 400 else None,
                key_id=f"key_{rng.randrange(200):04d}",
                team=f"team-{rng.randrange(5)}",
                project=f"project-{rng.randrange(10)}",
                end_user=f"user-{rng.randrange(5000)}",
                input_tokens=rng.randrange(50, 4000),
                output_tokens=rng.randrange(10, 800),
                cache_read_tokens=rng.randrange(0, 2000),
                latency_ms=round(latency, 3),
                ttft_ms=round(latency / 4, 3) if stream else None,
                stream=stream,
                truncated=rng.random() < 0.05,
                cost_usd=Decimal(rng.randrange(1, 5000)) / Decimal(1_000_000),
                prompt_text=text,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def fill(store: LedgerStore, rows: int, now: datetime) -> float:
    started = time.perf_counter()
    await store.open()
    for batch in batches(rows, now):
        await store.write_batch(batch)
    await store.aclose()
    return time.perf_counter() - started


def gateway_for(ledger: dict[str, Any], work: Path) -> Gateway:
    doc = {
        "providers": {"sim": {"type": "simulator", "simulator": {"format": "anthropic"}}},
        "models": {m: {"deployments": [{"provider": "sim", "model": m}]} for m in MODELS[:2]},
        "ledger": ledger,
        "keys": {"sqlite_path": str(work / "keys.db")},
        "conversations": {"backend": "off"},
        "lifecycle": {"retired": "allow"},
    }
    return Gateway(parse_config(doc))


def measure(url: str, paths: dict[str, str], repeats: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in paths}
    signed = httpx.post(f"{url}/dashboard/session", json={"token": TOKEN}, timeout=60)
    with httpx.Client(base_url=url, cookies=signed.cookies, timeout=120) as client:
        for name, path in paths.items():  # a first pass warms caches
            answer = client.get(path)
            assert answer.status_code == 200, (name, answer.text[:300])
        for _ in range(repeats):
            for name, path in paths.items():
                started = time.perf_counter()
                client.get(path).raise_for_status()
                timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--postgres", default="host=127.0.0.1 user=postgres dbname=test")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dashboard.md"))
    args = parser.parse_args()
    now = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    paths = endpoints("key_0007", f"th_bench_{args.rows // 2:08d}")
    results: dict[str, dict[str, list[float]]] = {}
    fills: dict[str, float] = {}
    os.environ.pop("TOLLHOUSE_ADMIN_TOKEN", None)
    for store_name in args.stores.split(","):
        if store_name == "sqlite":
            path = work / "ledger.db"
            fills[store_name] = asyncio.run(fill(SQLiteLedgerStore(path), args.rows, now))
            ledger = {"sqlite_path": str(path), "spill_path": str(work / "sqlite.spill")}
        else:
            schema = "bench_" + uuid.uuid4().hex[:8]

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            conninfo = make_conninfo(args.postgres, options=f"-c search_path={schema}")
            fills[store_name] = asyncio.run(fill(PostgresLedgerStore(conninfo), args.rows, now))
            os.environ["BENCH_DASHBOARD_DSN"] = conninfo
            ledger = {
                "backend": "postgres",
                "postgres": "env:BENCH_DASHBOARD_DSN",
                "spill_path": str(work / "postgres.spill"),
            }
        print(f"{store_name}: {args.rows:,} rows written in {fills[store_name]:.0f} s", flush=True)
        gateway = gateway_for(ledger, work)
        with BackgroundServer(create_app(gateway, admin_token=TOKEN)) as server:
            results[store_name] = measure(server.url, paths, args.repeats)
        for name, values in results[store_name].items():
            print(
                f"  {name:20s} p50 {statistics.median(values):8.1f} ms  p95 {p95(values):8.1f} ms"
            )
        if store_name != "sqlite":
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    write_report(Path(args.out), args, results, fills)


def write_report(
    out: Path,
    args: argparse.Namespace,
    results: dict[str, dict[str, list[float]]],
    fills: dict[str, float],
) -> None:
    stores = list(results)
    lines = [
        "# Dashboard data endpoints on a big ledger",
        "",
        f"`.venv/bin/python bench/dashboard_views.py --rows {args.rows} --repeats {args.repeats}"
        f" --stores {args.stores}` on {datetime.now(UTC).date().isoformat()}, a shared 2-core"
        " machine (others' work running). Rows over the last 30 days; each endpoint timed"
        f" {args.repeats} times, interleaved, after one warm-up; milliseconds, over loopback"
        " HTTP, sign-in cookie as the page sends it. Target: p95 < 300 ms.",
        "",
        "| endpoint | " + " | ".join(f"{s} p50 | {s} p95" for s in stores) + " |",
        "|---|" + "---:|---:|" * len(stores),
    ]
    for name in next(iter(results.values())):
        cells = []
        for store in stores:
            values = results[store][name]
            p95_value = p95(values)
            mark = "" if p95_value < 300 else " ✗"
            cells.append(f"{statistics.median(values):.0f} | {p95_value:.0f}{mark}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Rows written: " + ", ".join(f"{s} {fills[s]:.0f} s" for s in fills), ""]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
