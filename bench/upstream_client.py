#!/usr/bin/env python3
"""The upstream HTTP client alone: Tollhouse's own (asyncio + httptools) against aiohttp,
httpx (httpcore) and pyreqwest, on the same canned upstream, side by side.

    .venv/bin/python bench/upstream_client.py                 # ~12 minutes
    .venv/bin/python bench/upstream_client.py --quick         # ~2 minutes, a smoke run

The upstream is bench/upstream's nginx (one worker, pinned to CPU 0), answering the Anthropic
request the gateway sends: `whole` (a ~600-byte JSON Message), `stream` (the 5 KB SSE
sequence in one body, as the canned upstream sends it) and `events` (the same sequence, one
HTTP chunk per event, 41 chunks, as an upstream generating it sends it). Each client runs in
a fresh process pinned to CPU 1 on uvloop (what `tollhouse serve` runs), with `c` tasks
sending requests back to back over one keep-alive pool for `--duration` seconds after a
warm-up; every answer is checked (status 200, every byte of the canned body). Measurements
are interleaved (every client for one case before the next case, the order rotated each
repeat); the report shows medians over repeats of req/s and of the client process's CPU per
request (user + system, all threads: pyreqwest works on its own Rust threads), and each
alternative's req/s as a ratio of ours in the same repeat.

Needs the `bench` extra in the venv (`.venv/bin/pip install -e '.[dev,bench]'`: aiohttp and
pyreqwest; httpx is a dev dependency) and nginx with its njs module (`bash bench/setup.sh`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as gateway_bench  # noqa: E402 - bench/run.py: the nginx upstream and its helpers

CLIENTS = ("tollhouse", "aiohttp", "httpx", "pyreqwest")
MODES = {"whole": "/v1/messages", "stream": "/v1/messages", "events": "/v1/messages-events"}
BODY = (BENCH / "wrk" / "bodies" / "anthropic.json").read_bytes()
STREAM_BODY = (BENCH / "wrk" / "bodies" / "anthropic-stream.json").read_bytes()
HEADERS = {
    "x-api-key": gateway_bench.UPSTREAM_KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
EXPECTED = {
    "whole": (gateway_bench.UPSTREAM_DIR / "canned" / "anthropic.json").read_bytes(),
    "stream": (gateway_bench.UPSTREAM_DIR / "canned" / "anthropic.sse").read_bytes(),
    "events": (gateway_bench.UPSTREAM_DIR / "canned" / "anthropic.sse").read_bytes(),
}

# With --tls, the PEM file of the CA that signed the upstream's certificate (for the workers).
CA_VARIABLE = "BENCH_UPSTREAM_CA_FILE"

# One call: send the mode's request, read its answer whole or chunk by chunk, return the bytes.
Call = Callable[[], Awaitable[bytes]]


async def tollhouse_client(base: str, mode: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from tollhouse.providers.base import UpstreamRequest
    from tollhouse.providers.http_transport import HttpTransport

    transport = HttpTransport(
        base, {"x-api-key": gateway_bench.UPSTREAM_KEY}, ca_bundle=os.environ.get(CA_VARIABLE)
    )
    stream = mode != "whole"
    request = UpstreamRequest(
        path=MODES[mode],
        body=STREAM_BODY if stream else BODY,
        stream=stream,
        headers={"anthropic-version": "2023-06-01"},
        timeout=30,
    )

    async def call() -> bytes:
        response = await transport.send(request)
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        if not stream:
            return await response.read()
        return b"".join([chunk async for chunk in response.iter_chunks()])

    return call, transport.aclose


async def aiohttp_client(base: str, mode: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512, ssl=_verifying() or True),
        auto_decompress=False,
    )
    url = base + MODES[mode]
    stream = mode != "whole"
    body = STREAM_BODY if stream else BODY

    async def call() -> bytes:
        async with session.post(url, data=body, headers=HEADERS) as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            if not stream:
                return await response.read()
            return b"".join([chunk async for chunk in response.content.iter_any()])

    return call, session.close


async def httpx_client(base: str, mode: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    client = httpx.AsyncClient(
        base_url=base, limits=limits, timeout=30, verify=_verifying() or True
    )
    path = MODES[mode]
    stream = mode != "whole"
    body = STREAM_BODY if stream else BODY

    async def call() -> bytes:
        if not stream:
            response = await client.post(path, content=body, headers=HEADERS)
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            return response.content
        async with client.stream("POST", path, content=body, headers=HEADERS) as response:
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            return b"".join([chunk async for chunk in response.aiter_raw()])

    return call, client.aclose


async def pyreqwest_client(base: str, mode: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().max_connections(512).http1_only()
    if ca := os.environ.get(CA_VARIABLE):
        builder = builder.add_root_certificate_pem(Path(ca).read_bytes())  # noqa: ASYNC240 - once, at set-up
    client = builder.build()
    url = base + MODES[mode]
    stream = mode != "whole"
    body = STREAM_BODY if stream else BODY

    async def call() -> bytes:
        builder = client.post(url).headers(HEADERS).body_bytes(body)
        if not stream:
            response = await builder.build().send()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            return bytes(await response.bytes())
        async with builder.build_streamed() as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            parts = []
            while (chunk := await response.body_reader.read_chunk()) is not None:
                parts.append(bytes(chunk))
            return b"".join(parts)

    return call, client.close


def _verifying() -> ssl.SSLContext | None:
    """A context trusting the bench CA when the upstream speaks TLS (`--tls`)."""
    ca = os.environ.get(CA_VARIABLE)
    return ssl.create_default_context(cafile=ca) if ca else None


FACTORIES = {
    "tollhouse": tollhouse_client,
    "aiohttp": aiohttp_client,
    "httpx": httpx_client,
    "pyreqwest": pyreqwest_client,
}


async def measure(
    client: str, base: str, mode: str, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """Run `concurrency` request loops for `warmup` then `duration` seconds; the figures of
    the measured part only."""
    call, close = await FACTORIES[client](base, mode)
    expected = EXPECTED[mode]
    latencies: list[float] = []
    done = 0
    measuring = False
    stop_at = 0.0

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            body = await call()
            if body != expected:
                raise RuntimeError(f"{client}: answer of {len(body)} bytes is not the canned one")
            if measuring:
                latencies.append(time.perf_counter() - start)
                done += 1

    try:
        stop_at = time.monotonic() + warmup
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        measuring = True
        cpu0 = _cpu_seconds()
        wall0 = time.perf_counter()
        stop_at = time.monotonic() + duration
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
        cpu = _cpu_seconds() - cpu0
    finally:
        await close()
    latencies.sort()
    return {
        "requests": done,
        "rps": done / wall,
        "cpu_us_per_req": cpu / done * 1e6,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(argv: list[str]) -> None:
    client, base, mode, concurrency, duration, warmup = argv
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(
            measure(client, base, mode, int(concurrency), float(duration), float(warmup))
        )
    print(json.dumps(result))


def run_case(
    args: argparse.Namespace, client: str, base: str, mode: str, concurrency: int
) -> dict[str, Any] | None:
    argv = [
        *gateway_bench.pin(args.client_cpu),
        sys.executable,
        __file__,
        "--worker",
        client,
        base,
        mode,
        str(concurrency),
        str(args.duration),
        str(args.warmup),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.duration + args.warmup + 60
    )
    if done.returncode != 0:
        gateway_bench.log(f"  {client} {mode} c={concurrency}: FAILED\n{done.stderr[-2000:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def versions() -> dict[str, str]:
    found = {}
    for package in ("aiohttp", "httpx", "httpcore", "pyreqwest", "httptools", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    results: dict[tuple[str, str, int], list[dict[str, Any]]],
) -> str:
    concurrencies = sorted({c for _, _, c in results})
    lines = [
        "# The upstream HTTP client: Tollhouse's own vs aiohttp, httpx, pyreqwest"
        + (", over TLS" if args.tls else ""),
        "",
        f"`{' '.join(['python', 'bench/upstream_client.py', *args.argv])}` "
        f"({info['date_utc']}). {info['nproc']}-core {info['cpu_model']}, kernel "
        f"{info['kernel']}, nginx on CPU {args.load_cpus} and the client on CPU "
        f"{args.client_cpu}, load average {info['loadavg_start'][0]:.2f} "
        f"at the start, {os.getloadavg()[0]:.2f} at the end. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in versions().items())}; "
        f"Python {platform.python_version()}, uvloop for every client. "
        f"{args.repeats} interleaved repeats of {args.duration:g} s per case "
        f"(after {args.warmup:g} s of warm-up); medians.",
        "",
        "req/s (higher is better), client CPU per request, and each client's req/s as a ratio",
        "of Tollhouse's in the same repeat (median of the per-repeat ratios; < 1 = slower):",
        "",
        "| answer | c | client | req/s | CPU µs/req | p50 ms | p99 ms | vs ours |",
        "|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for mode in args.modes:
        for concurrency in concurrencies:
            ours = results.get(("tollhouse", mode, concurrency), [])
            for client in args.clients:
                runs = results.get((client, mode, concurrency), [])
                if not runs:
                    lines.append(f"| {mode} | {concurrency} | {client} | failed | | | | |")
                    continue
                ratios = [r["rps"] / o["rps"] for r, o in zip(runs, ours, strict=False)]
                ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
                lines.append(
                    f"| {mode} | {concurrency} | {client} "
                    f"| {statistics.median(r['rps'] for r in runs):,.0f} "
                    f"| {statistics.median(r['cpu_us_per_req'] for r in runs):,.0f} "
                    f"| {statistics.median(r['p50_ms'] for r in runs):.3f} "
                    f"| {statistics.median(r['p99_ms'] for r in runs):.3f} "
                    f"| {ratio} |"
                )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--cpus", default="0:1", help="upstream CPUs:client CPUs")
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "upstream_client.md")
    parser.add_argument("--quick", action="store_true", help="1 s runs, 2 repeats")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the upstream over TLS (a generated CA every client trusts); default output "
        "bench/results/upstream_client_tls.md",
    )
    args = parser.parse_args(argv)
    if args.tls and args.output == BENCH / "results" / "upstream_client.md":
        args.output = BENCH / "results" / "upstream_client_tls.md"
    args.argv = argv
    if args.quick:
        args.duration, args.repeats = 1.0, 2
    args.clients = args.clients.split(",")
    args.modes = args.modes.split(",")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.load_cpus, args.client_cpu = args.cpus.split(":")
    args.gw_cpus = args.client_cpu
    args.wrk = "wrk"  # named in bench/run.py's machine description, not used here
    return args


def serve_tls(upstream: gateway_bench.Service) -> int:
    """Add a TLS listener (a trustme certificate for localhost) to the upstream's rendered
    nginx config, its plain port kept for the health check; the TLS port."""
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("localhost")
    work = gateway_bench.WORK
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    issued.private_key_pem.write_to_path(str(work / "key.pem"))
    chain = work / "chain.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    os.environ[CA_VARIABLE] = str(work / "ca.pem")
    port = gateway_bench.free_port()
    conf = work / "nginx.conf"
    plain = f"listen 127.0.0.1:{upstream.port} backlog=4096;"
    text = conf.read_text()
    assert plain in text, "bench/upstream/nginx.conf changed its listen line"
    conf.write_text(
        text.replace(
            plain,
            f"{plain}\n        listen 127.0.0.1:{port} ssl backlog=4096;\n"
            f"        ssl_certificate {chain};\n        ssl_certificate_key {work / 'key.pem'};",
        )
    )
    return port


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        worker(argv[1:])
        return 0
    args = parse_args(argv)
    gateway_bench.WORK.mkdir(parents=True, exist_ok=True)
    upstream = gateway_bench.make_services(args, targets=[])["direct"]
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    info = gateway_bench.machine_info(args, targets=[])
    try:
        base = f"http://127.0.0.1:{upstream.port}"
        if args.tls:
            base = f"https://localhost:{serve_tls(upstream)}"
        upstream.start()
        upstream.wait_ready(20)
        for repeat in range(args.repeats):
            order = args.clients[repeat % len(args.clients) :]
            order += args.clients[: repeat % len(args.clients)]
            for mode in args.modes:
                for concurrency in args.concurrency:
                    for client in order:
                        result = run_case(args, client, base, mode, concurrency)
                        if result is not None:
                            results.setdefault((client, mode, concurrency), []).append(result)
                            gateway_bench.log(
                                f"  [{repeat + 1}/{args.repeats}] {mode} c={concurrency} "
                                f"{client}: {result['rps']:,.0f} req/s, "
                                f"{result['cpu_us_per_req']:,.0f} µs CPU/req"
                            )
    finally:
        upstream.stop()
    text = report(args, info, results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    raw = BENCH / "results" / "raw" / f"{args.output.stem}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({f"{c}|{m}|{n}": r for (c, m, n), r in results.items()}, indent=1))
    print(text)
    if not args.quick:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
