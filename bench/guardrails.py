#!/usr/bin/env python3
"""What local input guardrails and untrusted-content marking cost per call, against the same
route without them, side by side in one run.

    bash bench/setup.sh                          # once (nginx+njs, wrk)
    .venv/bin/python bench/guardrails.py --tollhouse .venv/bin/tollhouse
    .venv/bin/python bench/guardrails.py --duration 5 --repeats 1   # smoke test

The same canned nginx upstream as bench/run.py; three Tollhouse processes, ledger off, that
differ only in the route wrk calls (`claude-haiku-4-5`):

- `off`: no guardrails (the baseline);
- `local`: the local guardrails a route would typically list, all passing (the common path):
  two regular expressions (redacting), a deny-list of ten terms, a length bound;
- `untrusted`: `local` plus the first message marked untrusted: wrapped, scanned for the
  injection patterns, the notice appended to the system prompt, the body re-encoded.

wrk drives each in turn (interleaved repeats, the order rotated; bench/variants.py); the
figures are medians of each arm's req/s over `off`'s in the same repeat. The moderation
guardrail is not here: its cost is the provider's round trip, measured by
tests/stages/shape/test_moderation_latency.py.
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

ARMS = ("off", "local", "untrusted")
_GUARDRAILS = (
    "input_guardrails:\n"
    "  secrets:\n"
    "    kind: pattern\n"
    "    action: redact\n"
    "    patterns: {api_key: 'sk-[A-Za-z0-9]{20,}', aws_key: 'AKIA[0-9A-Z]{16}'}\n"
    "  codenames:\n"
    "    kind: deny_list\n"
    "    terms: [nightingale, bluebird, kestrel, osprey, heron, project lark, red falcon,\n"
    "            blue jay, night owl, sparrowhawk]\n"
    "  length:\n"
    "    kind: max_length\n"
    "    max_chars: 100000\n"
)
_DEPLOYMENT = (
    "    deployments:\n"
    "      - provider: bench-anthropic\n"
    "        model: claude-haiku-4-5-20251001\n"
)
_ROUTE = {
    "off": "",
    "local": "    input_guardrails: [secrets, codenames, length]\n",
    "untrusted": (
        "    input_guardrails: [secrets, codenames, length]\n    untrusted: {messages: [0]}\n"
    ),
}


def arm_sections(arm: str) -> str:
    """The arm's `models:` (replacing the bench config's), its guardrails, the ledger off."""
    return (
        f"ledger:\n  backend: off\n{_GUARDRAILS}"
        f"models:\n  claude-haiku-4-5:\n{_DEPLOYMENT}{_ROUTE[arm]}"
    )


def main() -> int:
    parser = wrk_options(__doc__.split("\n\n")[0], duration=10, repeats=5, output="guardrails.md")
    parser.add_argument("--scenario", default="anthropic", choices=sorted(run.SCENARIOS))
    args = parse_wrk_args(parser)
    sections = {arm: arm_sections(arm) for arm in ARMS}
    results = run_arms(args, sections, "guardrails", run.SCENARIOS[args.scenario])

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
    command = f"bench/guardrails.py --duration {args.duration:g} --repeats {args.repeats}"
    lines = [
        f"# Local input guardrails on vs off ({when})",
        "",
        f"`.venv/bin/python {command}`: scenario {args.scenario}, c={args.concurrency}, "
        f"ledger off, medians of {args.repeats} interleaved runs, gateway pinned to its CPU, "
        f"load to the other. Tollhouse: `{args.tollhouse}`.",
        "",
        "| route | req/s | vs off (median of per-repeat ratios) | p50 ms | p99 ms "
        "| gateway CPU µs/call | valid runs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    labels = {
        "off": "no guardrails",
        "local": "2 patterns (redact) + deny-list of 10 + max length, all passing",
        "untrusted": "the same + first message marked untrusted (wrapped, scanned)",
    }
    for arm in ARMS:
        rps = median(arm, lambda r: r["rps"])
        p50 = median(arm, lambda r: r["latency_us"]["p50"] / 1000)
        p99 = median(arm, lambda r: r["latency_us"]["p99"] / 1000)
        cpu = median(arm, lambda r: r.get("gateway_cpu_us_per_req"))
        paired = variants.median_ratio(results, arm, "off")
        lines.append(
            f"| {labels[arm]} | {run.cell(rps, ',.0f')} | "
            f"{'-' if paired is None else f'{paired:.1%}'} | {run.cell(p50, '.2f')} "
            f"| {run.cell(p99, '.2f')} | {run.cell(cpu, ',.0f')} | "
            f"{len(valid(arm))}/{args.repeats} |"
        )
    (run.RESULTS / "raw").mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (run.RESULTS / "raw" / f"guardrails-{stamp}.json").write_text(json.dumps(results))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
