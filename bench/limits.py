#!/usr/bin/env python3
"""What admission (gateway keys, rate limits, budgets) costs per call.

    bash bench/setup.sh                      # once (nginx+njs, wrk)
    .venv/bin/python bench/limits.py         # ~4 minutes; writes bench/results/limits.md
    .venv/bin/python bench/limits.py --duration 5 --repeats 1   # smoke test

(the repo's venv: the key is created with the gateway's own key store)

The same canned nginx upstream as bench/run.py; three Tollhouse processes, all with the
ledger off so that only admission is measured, that differ only in:

- `none`: no keys, no limits, no budgets (admission is skipped altogether);
- `in_process`: keys required, and the one key wrk presents carries rpm, input_tpm,
  output_tpm and concurrency limits and a daily budget, all far above what the run can
  reach (so nothing is refused), on the in-process counter store;
- `redis`: the same, on Redis counters (the server at --redis, under a prefix of this run,
  deleted afterwards): one round trip per admit and one per settle.

wrk drives each in turn (c=32, interleaved repeats, so noise on a shared machine hits all
alike); any error or non-2xx status (a refusal would be one) makes a run invalid. The
report gives median throughput as a fraction of `none` (the target for `in_process`: >= 80%).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, wrk, the canned upstream
import variants
from variants import interleaved_runs, parse_wrk_args, start_gateways, wrk_options

VARIANTS = ("none", "in_process", "redis")
TARGET = 0.80  # in_process vs none

# Far above anything a 2-CPU run reaches (a few thousand calls/s), so nothing is refused;
# the budget stays under 2^53 nano-dollars, exact in Redis's Lua numbers.
KEY_LIMITS = {
    "rpm": 1_000_000_000,
    "input_tpm": 10**12,
    "output_tpm": 10**12,
    "concurrency": 100_000,
}
KEY_DAILY_USD = Decimal("1000000")


def create_key(path: Path) -> str:
    """A key with limits and a budget in the SQLite key store at `path`; its secret."""
    from tollhouse.config.model import Budget, Limits
    from tollhouse.ports.keys.record import KeySpec
    from tollhouse.ports.keys.sqlite import SQLiteKeyStore

    async def main() -> str:
        store = SQLiteKeyStore(path)
        try:
            _, secret = await store.create(
                KeySpec(
                    name="bench",
                    limits=Limits(**KEY_LIMITS),
                    budget=Budget(daily_usd=KEY_DAILY_USD),
                )
            )
            return secret
        finally:
            await store.aclose()

    return asyncio.run(main())


def variant_sections(variant: str, keys: Path, redis_url: str, prefix: str) -> str:
    sections = "ledger:\n  backend: off\n"
    if variant == "none":
        return sections
    sections += f"keys:\n  required: true\n  sqlite_path: {keys}\n"
    if variant == "redis":
        sections += f"counters:\n  backend: redis\n  redis_url: {redis_url}\n  prefix: '{prefix}'\n"
    return sections


def admissions(port: int) -> dict[str, float]:
    """The gateway's admission decisions by result (`tollhouse_admissions_total`)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tollhouse_admissions_total{"):
            labels, _, value = line.rpartition(" ")
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            found[result] = found.get(result, 0.0) + float(value)
    return found


def delete_prefix(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


def main() -> int:
    parser = wrk_options(
        description=__doc__.split("\n\n")[0], duration=15, repeats=3, output="limits.md"
    )
    parser.add_argument("--scenario", default="anthropic", choices=sorted(run.SCENARIOS))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parse_wrk_args(parser)

    work = run.WORK
    work.mkdir(parents=True, exist_ok=True)
    keys = work / "keys.db"
    # run.run_wrk hands wrk BENCH_CLIENT_KEY=run.CLIENT_KEY (read at each call), which
    # bench/wrk/common.lua sends as x-api-key: every variant gets this key; `none` ignores it.
    run.CLIENT_KEY = create_key(keys)
    prefix = f"tollhouse:bench:{uuid.uuid4().hex[:8]}:"
    scenario = run.SCENARIOS[args.scenario]
    upstream = run.make_services(args, [])["direct"]
    services: dict[str, run.Service] = {}
    results: list[dict[str, Any]] = []
    decisions: dict[str, dict[str, float]] = {}
    try:
        upstream.start()
        upstream.wait_ready(30)
        sections = {
            variant: variant_sections(variant, keys, args.redis, prefix) for variant in VARIANTS
        }
        services = start_gateways(args, upstream, sections, work, "limits", {})
        results = interleaved_runs(args, services, scenario)
        for variant, service in services.items():
            decisions[variant] = admissions(service.port)
            run.log(f"{variant}: admission decisions {decisions[variant]}")
    finally:
        for service in services.values():
            service.stop()
        upstream.stop()
        run.log(f"redis: deleted {delete_prefix(args.redis, prefix)} keys under {prefix}")

    report = render_report(args, results, decisions)
    Path(args.output).write_text(report)
    print(report)
    refused = any(
        result not in ("admitted", "unavailable_admitted")
        for found in decisions.values()
        for result in found
    )
    valid = all(r["valid"] for r in results)
    return 0 if valid and not refused else 1


def render_report(
    args: argparse.Namespace, results: list[dict[str, Any]], decisions: dict[str, dict[str, float]]
) -> str:
    def valid(variant: str) -> list[dict[str, Any]]:
        return [r for r in results if r["variant"] == variant and r["valid"]]

    def median(variant: str, pick: Any) -> float | None:
        values = [pick(r) for r in valid(variant) if pick(r) is not None]
        return statistics.median(values) if values else None

    def ratio_to_none(variant: str) -> float | None:
        return variants.median_ratio(results, variant, "none")

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = f"bench/limits.py --duration {args.duration:g} --repeats {args.repeats}"
    lines = [
        f"# Admission cost: keys, limits, budgets ({when})",
        "",
        f"`.venv/bin/python {command}`: "
        f"scenario {args.scenario}, c={args.concurrency}, ledger off, medians of "
        f"{args.repeats} interleaved runs, gateway pinned to its CPU, load to the other "
        "(Redis itself is not pinned: it shares the machine's 2 CPUs with both). "
        f"Tollhouse: `{run.shown(args.tollhouse)}` ({_build(args.tollhouse)}).",
        "",
        "| admission | req/s | vs none (median of per-repeat ratios) | p50 ms | p99 ms "
        "| gateway CPU µs/call | admitted "
        "| valid runs |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    labels = {
        "none": "none (no keys, limits, budgets)",
        "in_process": "key + limits + budget, in-process counters",
        "redis": "key + limits + budget, Redis counters",
    }
    for variant in VARIANTS:
        rps = median(variant, lambda r: r["rps"])
        p50 = median(variant, lambda r: r["latency_us"]["p50"] / 1000)
        p99 = median(variant, lambda r: r["latency_us"]["p99"] / 1000)
        cpu = median(variant, lambda r: r.get("gateway_cpu_us_per_req"))
        admitted = decisions.get(variant, {}).get("admitted", 0)
        paired = ratio_to_none(variant)
        ratio = f"{paired:.0%}" if paired is not None else "-"
        lines.append(
            f"| {labels[variant]} | {run.cell(rps, ',.0f')} | {ratio} | {run.cell(p50, '.2f')} "
            f"| {run.cell(p99, '.2f')} | {run.cell(cpu, ',.0f')} | {admitted:,.0f} "
            f"| {len(valid(variant))}/{args.repeats} |"
        )
    in_process = ratio_to_none("in_process")
    if in_process is not None:
        verdict = "met" if in_process >= TARGET else "NOT met"
        lines += ["", f"Target in-process >= {TARGET:.0%} of none: {verdict}."]
    refusals = {
        variant: {k: v for k, v in found.items() if k != "admitted"}
        for variant, found in decisions.items()
        if any(k != "admitted" for k in found)
    }
    lines += ["", f"Refusals or unavailable-store decisions: {refusals or 'none'}."]
    raw = json.dumps({"results": results, "decisions": decisions})
    (run.RESULTS / "raw").mkdir(parents=True, exist_ok=True)
    (
        run.RESULTS / "raw" / f"limits-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    ).write_text(raw)
    return "\n".join(lines) + "\n"


def _build(tollhouse: str) -> str:
    """Whether the Tollhouse at `tollhouse` runs its admission path compiled (mypyc)."""
    import subprocess

    python = Path(tollhouse).with_name("python")
    probe = "import tollhouse.stages.admit as m; print(m.__file__)"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return (
        "admission path compiled with mypyc"
        if found.stdout.strip().endswith(".so")
        else ("pure Python")
    )


if __name__ == "__main__":
    sys.exit(main())
