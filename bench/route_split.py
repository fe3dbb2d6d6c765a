#!/usr/bin/env python3
"""What routing through a route's variants costs per call, against a route of one.

    bash bench/setup.sh                          # once (nginx+njs, wrk)
    .venv/bin/python bench/route_split.py        # ~3 minutes; writes bench/results/route-split.md
    .venv/bin/python bench/route_split.py --duration 5 --repeats 1   # smoke test

The same canned nginx upstream as bench/run.py; three Tollhouse processes, ledger off,
that differ only in the route wrk calls (`claude-haiku-4-5`):

- `single`: one route, no variants (the baseline);
- `split`: the same deployments as two variants, control 50 / canary 50, sticky by end
  user: every call hashes its end user and picks its variant, and its answer carries
  `x-tollhouse-variant` (the request is left as it is);
- `split_edit`: control 0 / canary 100 where the canary appends to the system prompt and
  sets temperature: every call also has its request changed and re-encoded.

wrk drives each in turn (c=32, interleaved repeats, compared within each repeat: see
bench/variants.py); any error or non-2xx makes a run invalid. Target: `split` >= 97 % of
`single` (the issue's "routing through variants costs <= 3 % throughput").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, wrk, the canned upstream
import variants
from variants import parse_wrk_args, run_arms, wrk_options

ARMS = ("single", "split", "split_edit")
TARGET = 0.97  # split vs single
_DEPLOYMENT = (
    "    deployments:\n"
    "      - provider: bench-anthropic\n"
    "        model: claude-haiku-4-5-20251001\n"
)
_VARIANTS = {
    "single": "",
    "split": "    variants: {control: {weight: 50}, canary: {weight: 50}}\n",
    "split_edit": (
        "    variants: {control: {weight: 0}, canary: {weight: 100, "
        "system: {mode: append, text: 'Answer in one sentence.'}, "
        "parameters: {temperature: 0.2}}}\n"
    ),
}


def arm_sections(arm: str) -> str:
    """The arm's `models:` (replacing the bench config's) with the ledger off."""
    return f"ledger:\n  backend: off\nmodels:\n  claude-haiku-4-5:\n{_DEPLOYMENT}{_VARIANTS[arm]}"


def main() -> int:
    parser = wrk_options(__doc__.split("\n\n")[0], duration=15, repeats=3, output="route-split.md")
    parser.add_argument("--scenario", default="anthropic", choices=sorted(run.SCENARIOS))
    args = parse_wrk_args(parser)
    sections = {arm: arm_sections(arm) for arm in ARMS}
    results = run_arms(args, sections, "split", run.SCENARIOS[args.scenario])

    report = render_report(args, results)
    Path(args.output).write_text(report)
    print(report)
    return 0 if all(r["valid"] for r in results) else 1


def render_report(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    def valid(arm: str) -> list[dict[str, Any]]:
        return [r for r in results if r["variant"] == arm and r["valid"]]

    def median(arm: str, pick: Any) -> float | None:
        found = [pick(r) for r in valid(arm) if pick(r) is not None]
        return statistics.median(found) if found else None

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = f"bench/route_split.py --duration {args.duration:g} --repeats {args.repeats}"
    lines = [
        f"# Routing through variants ({when})",
        "",
        f"`.venv/bin/python {command}`: scenario {args.scenario}, c={args.concurrency}, "
        f"ledger off, medians of {args.repeats} interleaved runs, gateway pinned to its CPU, "
        f"load to the other. Tollhouse: `{args.tollhouse}`.",
        "",
        "| route | req/s | vs single (median of per-repeat ratios) | p50 ms | p99 ms "
        "| gateway CPU µs/call | valid runs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    labels = {
        "single": "one route, no variants",
        "split": "two variants 50/50, sticky by end user",
        "split_edit": "a variant that appends to the system prompt, every call",
    }
    for arm in ARMS:
        rps = median(arm, lambda r: r["rps"])
        p50 = median(arm, lambda r: r["latency_us"]["p50"] / 1000)
        p99 = median(arm, lambda r: r["latency_us"]["p99"] / 1000)
        cpu = median(arm, lambda r: r.get("gateway_cpu_us_per_req"))
        paired = variants.median_ratio(results, arm, "single")
        lines.append(
            f"| {labels[arm]} | {_num(rps, ',.0f')} | "
            f"{'-' if paired is None else f'{paired:.1%}'} | {_num(p50, '.2f')} "
            f"| {_num(p99, '.2f')} | {_num(cpu, ',.0f')} | {len(valid(arm))}/{args.repeats} |"
        )
    split = variants.median_ratio(results, "split", "single")
    if split is not None:
        verdict = "met" if split >= TARGET else "NOT met"
        lines += ["", f"Target split >= {TARGET:.0%} of single: {verdict}."]
    (run.RESULTS / "raw").mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (run.RESULTS / "raw" / f"route-split-{stamp}.json").write_text(json.dumps(results))
    return "\n".join(lines) + "\n"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
