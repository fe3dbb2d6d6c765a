#!/usr/bin/env python3
"""CPU per call of the admission path alone, in process: no HTTP, no upstream.

    bench/.venv-tollhouse/bin/python bench/admission_micro.py   # the compiled install
    .venv/bin/python bench/admission_micro.py                   # the same, pure Python

bench/limits.py measures what admission costs a whole call under load; this isolates the
admission code so a change to it can be judged in seconds, without the noise of a shared
machine (profile it with `perf record -g` or py-spy on this script). One gateway, built
from the bench config with a key that carries rpm, input/output tpm, concurrency and a
daily budget (as bench/limits.py's `in_process` variant), runs for each call what the
request path runs for admission: key check, model scope, input limits, admit (estimate,
worst-case price, counters, rate-limit headers) and, once usage and cost are known,
settlement. The baseline loop makes the same `Call` and prices it, which every call does
with or without admission; the difference is admission's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import limits  # bench/limits.py: the key and config sections of its variants
import run  # bench/run.py: the bench config and request bodies
from tollhouse.accounting import Usage, cost_of
from tollhouse.call import Call
from tollhouse.config.loader import load_config
from tollhouse.gateway import Gateway
from tollhouse.stages.shape.policy import shape_request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tollhouse-admission-"))
    keys = work / "keys.db"
    secret = limits.create_key(keys)  # runs its own event loop: before ours
    os.environ["BENCH_UPSTREAM_KEY"] = run.UPSTREAM_KEY  # the config refers to it; no call is sent
    asyncio.run(measure(work, keys, secret, args.calls, args.repeats))
    return 0


async def measure(work: Path, keys: Path, secret: str, calls: int, repeats: int) -> None:
    config = work / "tollhouse.yaml"
    config.write_text(
        (run.CONFIGS / "tollhouse.yaml").read_text()
        + limits.variant_sections("in_process", keys, "", "")
    )
    body = orjson.loads((run.WRK_DIR / "bodies" / "anthropic.json").read_bytes())
    raw = orjson.dumps(body)
    headers = {"x-api-key": secret, "content-type": "application/json"}
    usage = Usage(input_tokens=60, output_tokens=40)

    gateway = Gateway(load_config(config))
    await gateway.start()
    entry = gateway.catalog.get(body["model"])

    def new_call() -> Call:
        return Call(
            client_format="anthropic",
            endpoint="messages",
            body=dict(body),
            raw_body=raw,
            headers=headers,
        )

    async def admitted() -> None:
        key = await gateway.auth.identify(headers)
        call = new_call()
        gateway.auth.authorize(call, key)
        plan = gateway.router.resolve(call.model)
        shape_request(gateway.request_policies, call, plan, key)
        waiting = gateway.admitter.admit(call, key, plan)
        if waiting is not None:
            await waiting
        assert call.admission is not None
        assert len(call.admission.headers) == 12
        call.usage = usage
        call.cost = cost_of(entry, usage)
        gateway.admitter.finish(call)

    async def baseline() -> None:
        call = new_call()
        call.usage = usage
        call.cost = cost_of(entry, usage)

    try:
        for loop in (admitted, baseline):  # warm-up: caches, key ring, shapes
            for _ in range(2_000):
                await loop()
        timings: dict[str, list[float]] = {"admission": [], "baseline": []}
        for _ in range(repeats):
            for name, loop in (("admission", admitted), ("baseline", baseline)):
                started = time.perf_counter()
                for _ in range(calls):
                    await loop()
                timings[name].append((time.perf_counter() - started) / calls * 1e6)
    finally:
        await gateway.aclose()

    with_admission = statistics.median(timings["admission"])
    without = statistics.median(timings["baseline"])
    import tollhouse.stages.admit as admit_module

    compiled = str(admit_module.__file__).endswith(".so")
    print(f"{sys.executable}: admission path {'compiled' if compiled else 'pure Python'}")
    print(f"per call, median of {repeats} x {calls:,} calls:")
    print(f"  with admission    {with_admission:6.2f} µs")
    print(f"  baseline          {without:6.2f} µs")
    print(f"  admission's own   {with_admission - without:6.2f} µs")


if __name__ == "__main__":
    sys.exit(main())
