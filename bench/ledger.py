#!/usr/bin/env python3
"""What the call ledger costs, and proof that it keeps every call.

    bash bench/setup.sh                      # once (nginx+njs, wrk)
    .venv/bin/python bench/ledger.py         # ~4 minutes; writes bench/results/ledger.md
    .venv/bin/python bench/ledger.py --duration 5 --repeats 1   # smoke test

(the repo's venv, for psycopg: the count reads the PostgreSQL ledger)

The same canned nginx upstream as bench/run.py; three Tollhouse processes that differ only
in their `ledger:` section: off, SQLite (the embedded default), PostgreSQL (the server at
--postgres). wrk drives each in turn (c=32, interleaved repeats, so noise on a shared
machine hits all alike) and the report gives median throughput with the ledger on as a
fraction of the same gateway with it off (the target: >= 85%).

Then the count: each gateway's own counter of calls served (`tollhouse_calls_total`) is
read after the last run, the gateway is stopped with SIGTERM (a clean shutdown drains the
ledger queue) and the rows in its database are counted. They must be equal, and with the
default settings every ledger sees well over 100,000 calls.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, wrk, the canned upstream
import variants
from variants import interleaved_runs, parse_wrk_args, start_gateways, wrk_options

VARIANTS = ("off", "sqlite", "postgres")


def ledger_section(variant: str, work: Path, schema: str) -> str:
    if variant == "off":
        return "ledger:\n  backend: off\n"
    if variant == "sqlite":
        return (
            f"ledger:\n  backend: sqlite\n  sqlite_path: {work}/ledger.db\n"
            f"  spill_path: {work}/sqlite.spill\n"
        )
    return (
        "ledger:\n  backend: postgres\n  postgres: env:BENCH_LEDGER_DSN\n"
        f"  spill_path: {work}/postgres.spill\n"
    )


def calls_served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("tollhouse_calls_total{")
        )
    )


def count_rows(variant: str, work: Path, dsn: str) -> int:
    if variant == "sqlite":
        with sqlite3.connect(work / "ledger.db") as db:
            return int(db.execute("SELECT count(*) FROM calls").fetchone()[0])
    import psycopg  # the gateway's own dependency: run with the repo's venv python

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM calls").fetchone()
        return int(row[0]) if row else 0


def main() -> int:
    parser = wrk_options(
        description=__doc__.split("\n\n")[0], duration=15, repeats=3, output="ledger.md"
    )
    parser.add_argument("--scenario", default="anthropic", choices=sorted(run.SCENARIOS))
    parser.add_argument("--postgres", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parse_wrk_args(parser)

    import psycopg

    schema = f"bench_ledger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    dsn = psycopg.conninfo.make_conninfo(args.postgres, options=f"-c search_path={schema}")

    work = run.WORK
    work.mkdir(parents=True, exist_ok=True)
    scenario = run.SCENARIOS[args.scenario]
    upstream = run.make_services(args, [])["direct"]
    services: dict[str, run.Service] = {}
    results: list[dict[str, Any]] = []
    counts: dict[str, tuple[int, int]] = {}
    try:
        upstream.start()
        upstream.wait_ready(30)
        sections = {variant: ledger_section(variant, work, schema) for variant in VARIANTS}
        services = start_gateways(
            args, upstream, sections, work, "ledger", {"BENCH_LEDGER_DSN": dsn}
        )
        results = interleaved_runs(args, services, scenario)
        for variant in ("sqlite", "postgres"):
            service = services[variant]
            served = calls_served(service.port)
            service.stop()
            counts[variant] = (served, count_rows(variant, work, dsn))
            run.log(f"{variant}: calls served {served:,}, records {counts[variant][1]:,}")
    finally:
        for service in services.values():
            service.stop()
        upstream.stop()
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

    report = render_report(args, results, counts)
    Path(args.output).write_text(report)
    print(report)
    ok = all(served == rows for served, rows in counts.values())
    return 0 if ok else 1


def render_report(
    args: argparse.Namespace, results: list[dict[str, Any]], counts: dict[str, tuple[int, int]]
) -> str:
    def median_rps(variant: str) -> float:
        return statistics.median(
            r["rps"] for r in results if r["variant"] == variant and r["valid"]
        )

    def median_cpu(variant: str) -> float:
        return statistics.median(
            r["gateway_cpu_us_per_req"]
            for r in results
            if r["variant"] == variant and r["valid"] and "gateway_cpu_us_per_req" in r
        )

    def median_ratio(variant: str) -> float:
        ratio = variants.median_ratio(results, variant, "off")
        assert ratio is not None, f"no valid run of {variant} beside a valid `off` run"
        return ratio

    lines = [
        f"# Ledger cost ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`.venv/bin/python bench/ledger.py --duration {args.duration:g} "
        f"--repeats {args.repeats}`: "
        f"scenario {args.scenario}, c={args.concurrency}, medians of {args.repeats} interleaved "
        "runs, gateway pinned to its CPU, load to the other.",
        "",
        "| ledger | req/s | vs off (median of per-repeat ratios) | gateway CPU µs/call "
        "| calls served | records stored |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for variant in VARIANTS:
        rps = median_rps(variant)
        served, rows = counts.get(variant, (0, 0))
        served_cell = f"{served:,}" if variant in counts else "-"
        rows_cell = f"{rows:,}" if variant in counts else "-"
        lines.append(
            f"| {variant} | {rps:,.0f} | {median_ratio(variant):.0%} | {median_cpu(variant):,.0f} "
            f"| {served_cell} | {rows_cell} |"
        )
    raw = json.dumps({"results": results, "counts": counts})
    (run.RESULTS / "raw").mkdir(parents=True, exist_ok=True)
    (
        run.RESULTS / "raw" / f"ledger-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    ).write_text(raw)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
