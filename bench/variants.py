"""Shared by the benchmarks that compare Tollhouse with itself (bench/ledger.py,
bench/limits.py): gateways that differ only in a config section, on one canned upstream,
driven in turn by wrk in interleaved repeats, compared pairwise within each repeat.

Noise on a shared machine moves whole repeats (every variant of one repeat runs within a
minute), so the figure to quote is the median over repeats of each variant's req/s over the
baseline's in the same repeat, not a ratio of medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path
from typing import Any

import run  # bench/run.py: services, wrk, the canned upstream


def wrk_options(
    description: str, *, duration: float, repeats: int, output: str
) -> argparse.ArgumentParser:
    """The command line every such benchmark takes (wrk's runs, the CPU split, the binaries,
    where the report goes), with the benchmark's defaults; it adds its own options after."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=float, default=duration, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cpus", default="0:1", help="load CPUs : gateway CPUs")
    parser.add_argument("--tollhouse", default=str(run.TOLLHOUSE))
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--output", default=str(run.RESULTS / output))
    return parser


def parse_wrk_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed command line, `--cpus` split into `load_cpus` and `gw_cpus`."""
    args = parser.parse_args()
    args.load_cpus, args.gw_cpus = [*args.cpus.split(":"), ""][:2]
    return args


def run_arms(
    args: argparse.Namespace,
    sections: dict[str, str],
    name: str,
    scenario: run.Scenario,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The canned upstream, one gateway per arm (`start_gateways`), their `interleaved_runs`,
    and everything stopped again, whatever happened."""
    work = run.WORK
    work.mkdir(parents=True, exist_ok=True)
    upstream = run.make_services(args, [])["direct"]
    services: dict[str, run.Service] = {}
    try:
        upstream.start()
        upstream.wait_ready(30)
        services = start_gateways(args, upstream, sections, work, name, env or {})
        return interleaved_runs(args, services, scenario)
    finally:
        for service in services.values():
            service.stop()
        upstream.stop()


def start_gateways(
    args: argparse.Namespace,
    upstream: run.Service,
    sections: dict[str, str],
    work: Path,
    name: str,
    env: dict[str, str],
    serve_args: dict[str, list[str]] | None = None,
    cpus: dict[str, str] | None = None,
) -> dict[str, run.Service]:
    """One `tollhouse serve` per variant: the bench config with `sections[variant]` (which
    replace its sections of the same names), started and ready, in the order of `sections`.
    `serve_args[variant]` is added to its `tollhouse serve` command line (e.g. `--workers`),
    and `cpus[variant]` pins it instead of `args.gw_cpus`. Each variant gets a config store
    of its own (`config_store.sqlite_path`), or they would all serve the newest config."""
    run.require_tollhouse(args.tollhouse)
    base = (run.CONFIGS / "tollhouse.yaml").read_text()
    base = base.replace(run.CONFIG_UPSTREAM, f"127.0.0.1:{upstream.port}")
    services: dict[str, run.Service] = {}
    for variant, section in sections.items():
        conf = work / f"tollhouse-{name}-{variant}.yaml"
        # Its own config store: gateways on one store all serve its newest version.
        store = f"config_store:\n  sqlite_path: {work}/config-{name}-{variant}.db\n"
        conf.write_text(run.with_sections(base, section + store))
        port = run.free_port()
        services[variant] = run.Service(
            f"tollhouse-{variant}",
            [
                *run.pin((cpus or {}).get(variant, args.gw_cpus)),
                args.tollhouse,
                "serve",
                "-c",
                str(conf),
                "-p",
                str(port),
                *(serve_args or {}).get(variant, []),
            ],
            port,
            "/readyz",
            run.clean_env(BENCH_UPSTREAM_KEY=run.UPSTREAM_KEY, **env),
        )
        services[variant].start()
    for service in services.values():
        service.wait_ready(60)
    return services


def interleaved_runs(
    args: argparse.Namespace, services: dict[str, run.Service], scenario: run.Scenario
) -> list[dict[str, Any]]:
    """A 2 s warm-up each, then `args.repeats` rounds of one wrk run per variant, the
    order rotated each round so no variant always runs right after another's load."""
    for service in services.values():
        run.run_wrk(args, service.port, scenario, args.concurrency, 2, None)
    results: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        order = list(services.items())
        order = order[repeat % len(order) :] + order[: repeat % len(order)]
        for variant, service in order:
            res = run.run_wrk(
                args, service.port, scenario, args.concurrency, args.duration, service
            )
            res.update(variant=variant, repeat=repeat)
            results.append(res)
            run.log(f"repeat {repeat} {variant:10s} {run.fmt_run(res)}")
    return results


def ratios(results: list[dict[str, Any]], variant: str, baseline: str) -> list[float]:
    """`variant`'s req/s over `baseline`'s in the same repeat, for each repeat where both
    runs are valid."""
    base = {r["repeat"]: r["rps"] for r in results if r["variant"] == baseline and r["valid"]}
    return [
        r["rps"] / base[r["repeat"]]
        for r in results
        if r["variant"] == variant and r["valid"] and r["repeat"] in base
    ]


def median_ratio(results: list[dict[str, Any]], variant: str, baseline: str) -> float | None:
    """Median over repeats of `variant`'s req/s over `baseline`'s in the same repeat."""
    found = ratios(results, variant, baseline)
    return statistics.median(found) if found else None
