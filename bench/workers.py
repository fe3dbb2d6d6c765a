#!/usr/bin/env python3
"""Scaling on cores: `tollhouse serve --workers 2` against one worker, on this machine.

    bash bench/setup.sh                    # once (nginx+njs, wrk, bench/.venv-tollhouse)
    python3 bench/workers.py               # ~5 minutes; writes bench/results/workers.md
    python3 bench/workers.py --duration 3 --repeats 1   # smoke test

Stdlib only, like run.py. The canned nginx upstream of bench/run.py; one gateway config (the
bench config as it is: the SQLite ledger on, no keys), served three ways, with wrk and nginx
pinned to CPU 0 in every case:

- `1 worker, CPU 1`: one process on the other CPU: the baseline, as in bench/run.py;
- `2 workers, CPU 1`: two processes sharing that one CPU: what running two costs when there
  is no core to gain (the supervising parent, two event loops, two ledger writers on one
  SQLite file, the kernel spreading connections over two accept queues);
- `2 workers, CPUs 0-1`: two processes free to use both CPUs, which they share with the load
  generator and the upstream: all a 2-core machine can show of scaling. With a core of its
  own per worker (and the load elsewhere) the gain would be larger; this machine has none
  to give.

Whole answers and streams (Anthropic, c=32), interleaved repeats with the order rotated
(bench/variants.py); the figures are medians of each variant's req/s over the baseline's in
the same repeat, and the gateway's CPU per call (all its processes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, wrk, the canned upstream
import variants
from variants import interleaved_runs, start_gateways

VARIANTS = {
    "1w-cpu1": ("1 worker, CPU 1", [], "1"),
    "2w-cpu1": ("2 workers, CPU 1", ["--workers", "2"], "1"),
    "2w-cpu01": ("2 workers, CPUs 0-1", ["--workers", "2"], "0,1"),
}
BASELINE = "1w-cpu1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scenarios", default="anthropic,anthropic-stream")
    parser.add_argument("--tollhouse", default=str(run.TOLLHOUSE))
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--output", default=str(run.RESULTS / "workers.md"))
    args = parser.parse_args()
    args.load_cpus, args.gw_cpus = "0", "1"
    run.require_tollhouse(args.tollhouse)
    scenarios = [run.SCENARIOS[name] for name in args.scenarios.split(",")]

    work = run.WORK
    work.mkdir(parents=True, exist_ok=True)
    upstream = run.make_services(args, [])["direct"]
    services: dict[str, run.Service] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    load = [os.getloadavg()]
    try:
        upstream.start()
        upstream.wait_ready(30)
        sections = {
            variant: (
                f"ledger:\n  sqlite_path: {work}/ledger-{variant}.db\n"
                f"  spill_path: {work}/ledger-{variant}.spill\n"
            )
            for variant in VARIANTS
        }
        services = start_gateways(
            args,
            upstream,
            sections,
            work,
            "workers",
            {},
            serve_args={variant: extra for variant, (_, extra, _) in VARIANTS.items()},
            cpus={variant: cpus for variant, (_, _, cpus) in VARIANTS.items()},
        )
        for scenario in scenarios:
            run.log(f"\n{scenario.name}, c={args.concurrency}")
            results[scenario.name] = interleaved_runs(args, services, scenario)
        load.append(os.getloadavg())
    finally:
        for service in services.values():
            service.stop()
        upstream.stop()

    report = render_report(args, results, load)
    Path(args.output).write_text(report)
    raw = run.RESULTS / "raw" / f"workers-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"results": results, "load": load}))
    print(report)
    return 0


def render_report(
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
    load: list[tuple[float, float, float]],
) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"# Scaling on cores: 2 workers against 1 ({when})",
        "",
        f"`python3 bench/workers.py --duration {args.duration:g} --repeats {args.repeats} "
        f"--tollhouse {run.shown(args.tollhouse)}`: the canned nginx upstream, "
        f"c={args.concurrency}, {args.repeats} interleaved repeats of {args.duration:g} s, wrk "
        f"and nginx pinned to CPU 0. Machine: {os.cpu_count()} CPUs, shared with other work "
        f"(load average {load[0][0]:.2f} at start, {load[-1][0]:.2f} at end). Ratios: median "
        f"over repeats of the variant's req/s over `{VARIANTS[BASELINE][0]}`'s in the same "
        "repeat. CPU per call counts every process of the gateway.",
        "",
        "| scenario | gateway | req/s | vs 1 worker | per-repeat ratios | p50 ms | p99 ms "
        "| gateway CPU µs/call | valid runs |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|",
    ]
    for scenario, runs in results.items():
        for variant, (label, _, _) in VARIANTS.items():
            mine = [r for r in runs if r["variant"] == variant and r["valid"]]

            def med(pick: Any, mine: list[dict[str, Any]] = mine) -> float | None:
                values = [v for v in (pick(r) for r in mine) if v is not None]
                return statistics.median(values) if values else None

            ratio = variants.median_ratio(runs, variant, BASELINE)
            per_repeat = variants.ratios(runs, variant, BASELINE)
            lines.append(
                f"| {scenario} | {label} | {run.cell(med(lambda r: r['rps']), ',.0f')} "
                f"| {run.cell(ratio, '.2f')}× | {', '.join(f'{x:.2f}' for x in per_repeat)} "
                f"| {run.cell(med(lambda r: r['latency_us']['p50'] / 1000), '.2f')} "
                f"| {run.cell(med(lambda r: r['latency_us']['p99'] / 1000), '.2f')} "
                f"| {run.cell(med(lambda r: r.get('gateway_cpu_us_per_req')), ',.0f')} "
                f"| {len(mine)}/{sum(1 for r in runs if r['variant'] == variant)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
