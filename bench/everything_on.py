#!/usr/bin/env python3
"""What every per-call feature costs together: the same gateway with all of them off, with
only the ledger, and with everything on, in one run.

    bash bench/setup.sh                          # once (nginx+njs, wrk, bench/.venv-tollhouse)
    python3 bench/everything_on.py               # ~6 minutes; writes bench/results/everything-on.md
    python3 bench/everything_on.py --duration 5 --repeats 1   # smoke test

Stdlib only, like run.py. The canned nginx upstream of bench/run.py; three Tollhouse processes
that differ only in their config sections:

- `off`: no gateway keys, no ledger, no call log (metrics are always counted);
- `ledger`: the SQLite ledger (the default backend), nothing else;
- `all`: gateway keys required, the one key wrk presents carrying rpm, input and output
  tokens per minute, concurrency limits and a daily budget (in-process counters, all far
  above what the run reaches, so nothing is refused), the SQLite ledger, the JSON call log
  to a file, and /metrics scraped once a second for the whole run.

For each scenario (whole answers and streams, both at c=32) wrk drives each variant in turn,
in interleaved repeats with the order rotated (bench/variants.py); the figures are medians of
each variant's req/s over `off`'s in the same repeat. Targets (issue #19): `all` >= 70 % of
`off`, `ledger` >= 85 %. After the runs every ledger's rows and the call log's lines are
counted against the calls each gateway served.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, wrk, the canned upstream, the everything-on sections
import variants
from variants import interleaved_runs, parse_wrk_args, start_gateways, wrk_options

VARIANTS = ("off", "ledger", "all")
TARGETS = {"all": 0.70, "ledger": 0.85}
LABELS = {
    "off": "all off (no keys, no ledger, no call log)",
    "ledger": "SQLite ledger only",
    "all": "everything on: key + limits + budget, SQLite ledger, call log, /metrics scraped",
}


def sections(work: Path) -> dict[str, str]:
    return {
        "off": "ledger:\n  backend: off\n",
        "ledger": (
            f"ledger:\n  backend: sqlite\n  sqlite_path: {work}/ledger-ledger.db\n"
            f"  spill_path: {work}/ledger-ledger.spill\n"
        ),
        "all": run.everything_on(work, "all"),
    }


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


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])


def main() -> int:
    parser = wrk_options(
        description=__doc__.split("\n\n")[0], duration=10, repeats=5, output="everything-on.md"
    )
    parser.add_argument("--scenarios", default="anthropic,anthropic-stream")
    parser.add_argument("--scrape-interval", type=float, default=1.0)
    args = parse_wrk_args(parser)
    scenarios = [run.SCENARIOS[name] for name in args.scenarios.split(",")]
    run.require_tollhouse(args.tollhouse)

    work = run.WORK
    work.mkdir(parents=True, exist_ok=True)
    # run.run_wrk hands wrk BENCH_CLIENT_KEY=run.CLIENT_KEY, which bench/wrk/common.lua
    # sends: every variant gets this key; those without keys required ignore it.
    run.CLIENT_KEY = run.create_key(args.tollhouse, work / "keys-all.db")
    upstream = run.make_services(args, [])["direct"]
    services: dict[str, run.Service] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, dict[str, int]] = {}
    load = [os.getloadavg()]
    scrapes = (0, 0)
    try:
        upstream.start()
        upstream.wait_ready(30)
        services = start_gateways(args, upstream, sections(work), work, "everything", {})
        with run.Scraper(services["all"].port, args.scrape_interval) as scraper:
            for scenario in scenarios:
                run.log(f"\n{scenario.name}, c={args.concurrency}")
                results[scenario.name] = interleaved_runs(args, services, scenario)
            scrapes = (scraper.scrapes, scraper.failures)
        load.append(os.getloadavg())
        for variant in ("ledger", "all"):
            service = services[variant]
            served = calls_served(service.port)
            service.stop()  # a clean shutdown drains the ledger and the call log
            counts[variant] = {
                "served": served,
                "records": count_rows(work / f"ledger-{variant}.db"),
            }
            if variant == "all":
                with (work / "calls-all.jsonl").open("rb") as lines:
                    counts[variant]["log_lines"] = sum(1 for _ in lines)
            run.log(f"{variant}: {counts[variant]}")
    finally:
        for service in services.values():
            service.stop()
        upstream.stop()

    report, ok = render_report(args, results, counts, load, scrapes)
    Path(args.output).write_text(report)
    raw = run.RESULTS / "raw" / f"everything-on-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.with_suffix(".json").write_text(
        json.dumps({"results": results, "counts": counts, "load": load})
    )
    print(report)
    return 0 if ok else 1


def render_report(
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
    counts: dict[str, dict[str, int]],
    load: list[tuple[float, float, float]],
    scrapes: tuple[int, int],
) -> tuple[str, bool]:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"# Everything on, against everything off ({when})",
        "",
        f"`python3 bench/everything_on.py --duration {args.duration:g} --repeats "
        f"{args.repeats} --tollhouse {run.shown(args.tollhouse)}`: the canned nginx upstream, "
        f"c={args.concurrency}, {args.repeats} interleaved repeats of {args.duration:g} s per "
        f"variant and scenario, gateway pinned to CPU {args.gw_cpus}, wrk and nginx to CPU "
        f"{args.load_cpus}, on a 2-CPU VM shared with other work (load average "
        f"{load[0][0]:.2f} at start, {load[-1][0]:.2f} at end). Ratios: median over repeats of "
        f"the variant's req/s over `off`'s in the same repeat. /metrics of `all` scraped "
        f"every {args.scrape_interval:g} s ({scrapes[0]} scrapes, {scrapes[1]} failed).",
        "",
        "`off`'s gateway CPU per call over the variant's (median of per-repeat ratios) is "
        "the same comparison by efficiency: the throughput a variant would have with the "
        "gateway's CPU to itself, less moved by what else the machine runs.",
        "",
        "| scenario | variant | req/s | vs off | per-repeat ratios | by CPU/call | p50 ms "
        "| p99 ms | gateway CPU µs/call | valid runs |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|",
    ]
    ok = True
    verdicts: list[str] = []
    for scenario, runs in results.items():
        for variant in VARIANTS:
            mine = [r for r in runs if r["variant"] == variant and r["valid"]]

            def med(pick: Any, mine: list[dict[str, Any]] = mine) -> float | None:
                values = [v for v in (pick(r) for r in mine) if v is not None]
                return statistics.median(values) if values else None

            ratio = variants.median_ratio(runs, variant, "off")
            per_repeat = variants.ratios(runs, variant, "off")
            lines.append(
                f"| {scenario} | {LABELS[variant]} | {run.cell(med(lambda r: r['rps']), ',.0f')} "
                f"| {run.cell(ratio, '.0%')} | {', '.join(f'{x:.2f}' for x in per_repeat)} "
                f"| {run.cell(cpu_ratio(runs, variant), '.0%')} "
                f"| {run.cell(med(lambda r: r['latency_us']['p50'] / 1000), '.2f')} "
                f"| {run.cell(med(lambda r: r['latency_us']['p99'] / 1000), '.2f')} "
                f"| {run.cell(med(lambda r: r.get('gateway_cpu_us_per_req')), ',.0f')} "
                f"| {len(mine)}/{sum(1 for r in runs if r['variant'] == variant)} |"
            )
            if variant in TARGETS:
                met = ratio is not None and ratio >= TARGETS[variant]
                ok = ok and met
                verdicts.append(
                    f"- {scenario}, {variant}: {run.cell(ratio, '.0%')} of off (target ≥ "
                    f"{TARGETS[variant]:.0%}): **{'met' if met else 'NOT met'}**"
                )
    lines += ["", "Targets:", "", *verdicts, ""]
    for variant, found in counts.items():
        extra = f", {found['log_lines']:,} call-log lines" if "log_lines" in found else ""
        lines.append(
            f"- `{variant}`: {found['served']:,} calls served, {found['records']:,} ledger "
            f"records{extra} after a clean shutdown."
        )
        ok = ok and found["served"] == found["records"] == found.get("log_lines", found["served"])
    return "\n".join(lines) + "\n", ok


def cpu_ratio(runs: list[dict[str, Any]], variant: str) -> float | None:
    """Median over repeats of `off`'s gateway CPU per call over `variant`'s."""
    cpu = {
        (r["variant"], r["repeat"]): r["gateway_cpu_us_per_req"]
        for r in runs
        if r["valid"] and r.get("gateway_cpu_us_per_req")
    }
    found = [
        cpu[("off", repeat)] / cost
        for (name, repeat), cost in cpu.items()
        if name == variant and ("off", repeat) in cpu
    ]
    return statistics.median(found) if found else None


if __name__ == "__main__":
    sys.exit(main())
