#!/usr/bin/env python3
"""The shaping step alone, per call, with the local guardrails of bench/guardrails.py on and
off: the bench's request body through `shape_request` on three plans of one router, side by
side, in interleaved repeats (median µs per call and the ratio to `off`). In process, no
network: the guardrails' own cost, without the load generator's noise.

    .venv/bin/python bench/guardrails_micro.py [--calls 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import orjson
import yaml

from tollhouse.call import Call
from tollhouse.config import parse_config
from tollhouse.providers.registry import build_providers
from tollhouse.stages.route import Router
from tollhouse.stages.shape.policy import shape_request
from tollhouse.stages.shape.request_policies import request_policies

sys.path.insert(0, str(Path(__file__).resolve().parent))

import guardrails  # bench/guardrails.py: the arms' config sections

BENCH = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    body = (BENCH / "wrk" / "bodies" / "anthropic.json").read_bytes()
    routers = {}
    for arm in guardrails.ARMS:
        doc = yaml.safe_load(guardrails.arm_sections(arm))
        doc["ledger"] = {"backend": "off"}
        doc["providers"] = {"bench-anthropic": {"type": "simulator"}}
        config = parse_config(doc)
        routers[arm] = Router(config, build_providers(config), config.catalog.build())
    policies = request_policies()

    async def shape(arm: str) -> float:
        router = routers[arm]
        started = time.perf_counter()
        for _ in range(args.calls):
            call = Call("anthropic", "messages", orjson.loads(body), body, {})
            plan = router.route(call, None)
            waiting = shape_request(policies, call, plan, None)
            if waiting is not None:
                await waiting
        return (time.perf_counter() - started) / args.calls * 1e6

    per_call: dict[str, list[float]] = {arm: [] for arm in guardrails.ARMS}
    for repeat in range(args.repeats):
        arms = list(guardrails.ARMS)
        for arm in arms[repeat % 3 :] + arms[: repeat % 3]:
            per_call[arm].append(asyncio.run(shape(arm)))
    off = statistics.median(per_call["off"])
    print(f"shaping per call, median of {args.repeats} repeats of {args.calls} calls:")
    for arm in guardrails.ARMS:
        median = statistics.median(per_call[arm])
        print(f"  {arm:10s} {median:7.2f} µs  ({median - off:+.2f} µs, x{median / off:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
