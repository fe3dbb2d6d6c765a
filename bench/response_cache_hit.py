"""What a response-cache hit costs: the same Anthropic request through one gateway, to a
route answered by the cache (a hit) and to an uncached route answered by an in-process
simulator that answers at once (the gateway's own path: route, shape, admit, dispatch,
account), interleaved call by call, for each store (in process, SQLite, Redis when one
answers at 127.0.0.1:6379). Reports per store the median latency of each over `--repeats`
runs of `--calls` pairs, the hit's latency minus the path's (the target: under 1 ms at
p50) and their ratio; and the store's own lookup (`get`) median, alone, in µs.

    .venv/bin/python bench/response_cache_hit.py [--calls 1000] [--repeats 5]

Writes bench/results/response-cache.md. Not run by CI; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "response-cache.md"
BODY = {
    "max_tokens": 200,
    "messages": [{"role": "user", "content": "What is the capital of France, and why?"}],
}
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(url: str, calls: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"plain": [], "hit": []}
    with httpx.Client(base_url=url, headers=HEADERS) as client:
        client.post("/v1/messages", json={**BODY, "model": "cached"}).raise_for_status()
        for _ in range(calls):
            for route, kind in (("plain", "plain"), ("cached", "hit")):
                started = time.perf_counter()
                reply = client.post("/v1/messages", json={**BODY, "model": route})
                times[kind].append(time.perf_counter() - started)
                if kind == "hit" and reply.headers.get("x-tollhouse-cache") != "hit":
                    raise SystemExit(f"expected a hit, got {reply.headers}")
    return times


def store_lookup_us(store: Any, rounds: int = 2000) -> float:
    from tollhouse.ports.cache.base import CachedAnswer

    async def main() -> float:
        now = time.time()
        await store.put("k", CachedAnswer(b"x" * 700, now, now + 3600, now + 3600, "0.001", "r"))
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            await store.get("k", time.time())
            samples.append(time.perf_counter() - started)
        await store.aclose()
        return statistics.median(samples) * 1e6

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    import redis

    from tollhouse.config import parse_config
    from tollhouse.gateway import Gateway
    from tollhouse.ports.cache.from_config import response_store_from_config
    from tollhouse.server.app import create_app
    from tollhouse.server.runner import BackgroundServer

    backends: list[dict[str, Any]] = [{"backend": "in_process"}]
    with tempfile.TemporaryDirectory(prefix="tollhouse-bench-cache-") as folder:
        backends.append({"backend": "sqlite", "sqlite_path": f"{folder}/cache.db"})
        try:
            redis.Redis(socket_connect_timeout=1).ping()
            backends.append({"backend": "redis", "prefix": f"bench:{time.time_ns()}:"})
        except redis.exceptions.ConnectionError:
            print("no Redis at 127.0.0.1:6379: its row is left out")
        rows = []
        deployments = [{"provider": "sim", "model": "claude-haiku-4-5"}]
        for section in backends:
            config = parse_config(
                {
                    "providers": {"sim": {"type": "simulator"}},
                    "models": {
                        "plain": {"deployments": deployments},
                        "cached": {
                            "deployments": deployments,
                            "cache": {"ttl_seconds": 3600},
                        },
                    },
                    "ledger": {"backend": "off"},
                    "keys": {"sqlite_path": f"{folder}/keys.db"},
                    "conversations": {"backend": "off"},
                    "response_cache": section,
                }
            )
            server = BackgroundServer(create_app(Gateway(config))).start()
            runs = []
            try:
                for _ in range(args.repeats):
                    runs.append(measure(server.url, args.calls))
            finally:
                server.stop()
            plain = [statistics.median(run["plain"]) * 1000 for run in runs]
            hit = [statistics.median(run["hit"]) * 1000 for run in runs]
            p99 = [percentile(run["hit"], 0.99) * 1000 for run in runs]
            lookup = store_lookup_us(response_store_from_config(config.response_cache))
            rows.append((section["backend"], plain, hit, p99, lookup))
            if section["backend"] == "redis":
                client = redis.Redis()
                keys = list(client.scan_iter(match=section["prefix"] + "*"))
                if keys:
                    client.delete(*keys)
    lines = [
        "# What a response-cache hit costs",
        "",
        f"`bench/response_cache_hit.py --calls {args.calls} --repeats {args.repeats}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): one Anthropic request, "
        "interleaved call by call to a cached route (every call a hit) and to an uncached "
        "route on an in-process simulator answering at once, httpx client in the gateway's "
        "process, ledger off; loopback, a shared 2-core machine. Figures: the median over "
        "the runs of each run's median (ms); the store's `get` alone in µs.",
        "",
        "| store | gateway path p50 ms | hit p50 ms | hit - path ms | hit / path | hit p99 ms "
        "| store get µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, plain, hit, p99, lookup in rows:
        p, h = statistics.median(plain), statistics.median(hit)
        lines.append(
            f"| {name} | {p:.3f} | {h:.3f} | {h - p:+.3f} | {h / p:.2f} | "
            f"{statistics.median(p99):.3f} | {lookup:.1f} |"
        )
    lines += [
        "",
        "Target: a hit adds under 1 ms at p50 over the gateway's own path.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
