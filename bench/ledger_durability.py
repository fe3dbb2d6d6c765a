#!/usr/bin/env python3
"""What `ledger.durability: synced` costs beside `batched`, on SQLite and PostgreSQL.

    bash bench/setup.sh                              # once (nginx+njs, wrk)
    .venv/bin/python bench/ledger_durability.py      # ~3 min: bench/results/ledger-durability.md
    .venv/bin/python bench/ledger_durability.py --duration 5 --repeats 1   # smoke test

The canned nginx upstream of bench/run.py and four Tollhouse processes that differ only in
their `ledger:` section (backend x durability). wrk drives each in turn (interleaved repeats,
so noise on a shared machine hits all alike); the report gives median req/s and latency per
variant and, per backend, synced's req/s over batched's in the same repeat (median of those
ratios). Synced waits for an fsync (shared by every call finishing meanwhile) before each
answer's last byte, so its cost is latency under light load and fsyncs per second under heavy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, wrk, the canned upstream
import variants
from variants import parse_wrk_args, run_arms, wrk_options

BACKENDS = ("sqlite", "postgres")
DURABILITIES = ("batched", "synced")


def ledger_section(backend: str, durability: str, work: Path) -> str:
    name = f"{backend}-{durability}"
    store = (
        f"  backend: sqlite\n  sqlite_path: {work}/{name}.db\n"
        if backend == "sqlite"
        else "  backend: postgres\n  postgres: env:BENCH_LEDGER_DSN\n"
    )
    return f"ledger:\n{store}  spill_path: {work}/{name}.spill\n  durability: {durability}\n"


def main() -> int:
    parser = wrk_options(
        description=__doc__.split("\n\n")[0], duration=10, repeats=3, output="ledger-durability.md"
    )
    parser.add_argument("--scenario", default="anthropic", choices=sorted(run.SCENARIOS))
    parser.add_argument("--postgres", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parse_wrk_args(parser)

    import psycopg

    schema = f"bench_durability_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    dsn = psycopg.conninfo.make_conninfo(args.postgres, options=f"-c search_path={schema}")

    work = run.WORK
    sections = {
        f"{backend}-{durability}": ledger_section(backend, durability, work)
        for backend in BACKENDS
        for durability in DURABILITIES
    }
    scenario = run.SCENARIOS[args.scenario]
    try:
        results = run_arms(args, sections, "durability", scenario, {"BENCH_LEDGER_DSN": dsn})
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

    report = render_report(args, results)
    Path(args.output).write_text(report)
    print(report)
    return 0


def render_report(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    def median(variant: str, pick: Any) -> float:
        return statistics.median(pick(r) for r in results if r["variant"] == variant and r["valid"])

    lines = [
        "# Ledger durability: batched vs synced "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`.venv/bin/python bench/ledger_durability.py --duration {args.duration:g} "
        f"--repeats {args.repeats}`: scenario {args.scenario}, c={args.concurrency}, medians of "
        f"{args.repeats} interleaved runs, gateway pinned to its CPU, load to the other.",
        "",
        "| ledger | req/s | p50 ms | p99 ms "
        "| synced / batched req/s (median of per-repeat ratios) |",
        "|---|--:|--:|--:|--:|",
    ]
    for backend in BACKENDS:
        for durability in DURABILITIES:
            variant = f"{backend}-{durability}"
            ratio = (
                variants.median_ratio(results, variant, f"{backend}-batched")
                if durability == "synced"
                else None
            )
            lines.append(
                f"| {variant} | {median(variant, lambda r: r['rps']):,.0f} "
                f"| {median(variant, lambda r: r['latency_us']['p50']) / 1000:.2f} "
                f"| {median(variant, lambda r: r['latency_us']['p99']) / 1000:.2f} "
                f"| {'-' if ratio is None else f'{ratio:.0%}'} |"
            )
    (run.RESULTS / "raw").mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (run.RESULTS / "raw" / f"ledger-durability-{stamp}.json").write_text(
        json.dumps({"results": results})
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
