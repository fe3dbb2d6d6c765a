#!/usr/bin/env python3
"""What relaying a slow stream costs a gateway: CPU per chunk, TTFB added, RSS per open stream.

    bash scripts/install-compiled.sh /tmp/th-new            # the tree under test, compiled
    python3 bench/relay_cost.py --gateway new=/tmp/th-new/bin/tollhouse \\
        --gateway base=/tmp/th-base/bin/tollhouse            # side by side, same run
    python3 bench/relay_cost.py --gateway new=... --open 10000 --chunks 30 --gap 1000

Starts the bench upstream (nginx + njs, bench/upstream/) and each `tollhouse serve` given,
all pointed at the upstream's slow stream (`/slow/N/D/...`: N chunks D ms apart, each written
as it is made). Then, round after round, each gateway in turn (the order alternates) holds
`--concurrency` streams open from this process for `--seconds` (each stream client starts its
next stream when one ends, on its kept-alive connection); the direct upstream is measured the
same way once per round, the baseline of time to first chunk. Per phase it records:

- CPU µs per chunk: the gateway's process CPU time (utime + stime, /proc/PID/stat) over the
  phase, divided by the chunks it relayed (streams completed x N). CPU time rather than wall
  time, because other work on a shared machine inflates wall time far more than CPU time.
- streams/s, and the ideal C / ((N - 1) x D).
- time to first chunk (request sent -> first body byte) p50/p99, and what the gateway adds
  over the direct upstream's.
- RSS per open stream: (gateway RSS with every stream open - its RSS just before) / C.
- reads per stream (the client's socket reads; ~N when chunks are relayed as they arrive, far
  fewer if something buffers), errors (non-200, an unfinished or unterminated stream).

`--open C` is the mode for item 3 of #19: one long phase per gateway with C streams, opened
gradually over `--ramp` seconds, RSS sampled once all are open. The open-file limit is raised
for this process and its children. Medians over rounds go to bench/results/ (`--out`), with
the raw figures next to it (.json). Stdlib only (uvloop used if importable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import run as bench_run  # bench/run.py: Service, render, free_port, pin, clean_env

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / f"relay-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
RESULTS = BENCH / "results"
UPSTREAM_KEY = bench_run.UPSTREAM_KEY

BODIES = {
    "anthropic": (
        "/v1/messages",
        {"anthropic-version": "2023-06-01", "x-api-key": "sk-bench-client"},
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 256,
            "stream": True,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        },
        b"event: message_stop",
    ),
    "openai": (
        "/v1/chat/completions",
        {"authorization": "Bearer sk-bench-client"},
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        },
        b"data: [DONE]",
    ),
}


def gateway_config(
    upstream: str, chunks: int, gap: int, pool: int | None, max_in_flight: int | None = None
) -> str:
    slow = f"http://{upstream}/slow/{chunks}/{gap}"
    pool_line = f"\n    max_connections: {pool}" if pool else ""
    in_flight = f"reliability:\n  max_in_flight: {max_in_flight}\n" if max_in_flight else ""
    return f"""# rendered by bench/relay_cost.py
server:
  host: 127.0.0.1
  port: 8080
providers:
  bench-anthropic:
    type: anthropic
    base_url: {slow}
    api_key: env:BENCH_UPSTREAM_KEY{pool_line}
  bench-openai:
    type: openai
    base_url: {slow}/v1
    api_key: env:BENCH_UPSTREAM_KEY{pool_line}
models:
  claude-haiku-4-5:
    deployments:
      - provider: bench-anthropic
        model: claude-haiku-4-5-20251001
  gpt-4o-mini:
    deployments:
      - provider: bench-openai
        model: gpt-4o-mini
logging:
  level: warning
{in_flight}"""


# --------------------------------------------------------------------------------------------
# the stream client: one kept-alive connection, one stream at a time


@dataclass
class Tally:
    ttfb_us: list[float] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    completed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    open_now: int = 0
    open_peak: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class StreamReader(asyncio.Protocol):
    """Reads one HTTP/1.1 response at a time; `done` resolves at its last byte."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] | None = None
        self.lost = False
        self._reset()

    def _reset(self) -> None:
        self.head = b""
        self.in_body = False
        self.status = 0
        self.first_body_ns = 0
        self.reads = 0
        self.tail = b""
        self.close_after = False
        self.remaining = -1  # body bytes still due, for a body with a content-length

    def expect(self, loop: asyncio.AbstractEventLoop) -> None:
        self._reset()
        self.done = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection lost mid-response"))

    def data_received(self, data: bytes) -> None:
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end], self.head[end + 4 :]
            self.in_body = True
            self.status = int(head[9:12])
            lower = head.lower()
            self.close_after = b"connection: close" in lower
            if b"transfer-encoding: chunked" not in lower:
                at = lower.find(b"content-length:")
                if at < 0:  # delimited by the connection's end: not read further
                    self.close_after = True
                    self._finish()
                    return
                self.remaining = int(lower[at + 15 :].split(b"\r\n", 1)[0])
            if not data:
                return
        self.reads += 1
        if not self.first_body_ns:
            self.first_body_ns = time.perf_counter_ns()
        self.tail = (self.tail + data)[-64:]
        if self.remaining >= 0:
            self.remaining -= len(data)
            if self.remaining <= 0:
                self._finish()
        elif self.tail.endswith(b"\r\n0\r\n\r\n"):
            self._finish()

    def _finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


async def stream_client(
    port: int,
    prefix: str,
    api: str,
    until: float,
    tally: Tally,
    limit_s: float,
    start_after: float,
    whole: bool = False,
) -> None:
    loop = asyncio.get_running_loop()
    path, headers, body, terminator = BODIES[api]
    if whole:
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        terminator = b"}"
    payload = json.dumps(body).encode()
    head = (
        f"POST {prefix}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "content-type: application/json\r\naccept: text/event-stream\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"content-length: {len(payload)}\r\n\r\n"
    ).encode()
    request = head + payload
    await asyncio.sleep(max(0.0, start_after - time.monotonic()))
    proto: StreamReader | None = None
    while time.monotonic() < until:
        try:
            if proto is None or proto.lost or proto.close_after:
                if proto is not None and proto.transport is not None:
                    proto.transport.close()
                transport, proto = await loop.create_connection(StreamReader, "127.0.0.1", port)
                proto.transport = transport  # uvloop may call connection_made later
            assert proto.transport is not None
            proto.expect(loop)
            assert proto.done is not None
            sent = time.perf_counter_ns()
            proto.transport.write(request)
            tally.open_now += 1
            tally.open_peak = max(tally.open_peak, tally.open_now)
            try:
                await asyncio.wait_for(proto.done, limit_s)
            finally:
                tally.open_now -= 1
        except (OSError, TimeoutError, ConnectionError) as exc:
            tally.error(type(exc).__name__)
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            proto = None
            await asyncio.sleep(0.05)
            continue
        if proto.status != 200:
            tally.error(f"http {proto.status}")
            continue
        if terminator not in proto.tail:
            # the tail keeps the last 64 bytes: the terminator event must be among them
            tally.error("unterminated stream")
            continue
        tally.completed += 1
        tally.reads.append(proto.reads)
        tally.ttfb_us.append((proto.first_body_ns - sent) / 1000)
    if proto is not None and proto.transport is not None:
        proto.transport.close()


# --------------------------------------------------------------------------------------------
# processes


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (a server and its workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
                if int(fields[2]) == pgid:
                    pids.append(int(entry))
    return pids


def cpu_split(pgid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process group `pgid`'s live processes."""
    user = system = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            user += int(fields[11])
            system += int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def rss_kb(pgid: int) -> int:
    """Resident memory of process group `pgid`'s live processes, KB."""
    total = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]


async def phase(
    svc: bench_run.Service,
    args: argparse.Namespace,
    concurrency: int,
    seconds: float,
    ramp: float,
) -> dict[str, Any]:
    """`concurrency` stream clients against `svc` for `seconds` (after `ramp`), then drained."""
    assert svc.proc is not None
    tally = Tally()
    # nginx itself is asked for its slow path; a gateway's base_url carries it
    prefix = f"/slow/{args.chunks}/{args.gap}" if svc.name == "direct" else ""
    now = time.monotonic()
    until = now + ramp + seconds
    apis = ["anthropic", "openai"] if args.api == "both" else [args.api]
    timeout = args.chunks * args.gap / 1000 + args.stream_timeout
    rss_before = rss_kb(svc.proc.pid)
    cpu_before = svc.cpu_seconds()
    user_before, sys_before = cpu_split(svc.proc.pid)
    t0 = time.monotonic()
    clients = [
        asyncio.create_task(
            stream_client(
                svc.port,
                prefix,
                apis[i % len(apis)],
                until,
                tally,
                timeout,
                now + ramp * i / concurrency,
                args.whole,
            )
        )
        for i in range(concurrency)
    ]
    # RSS with every stream open: sampled in the middle of the steady part
    await asyncio.sleep(ramp + min(seconds / 2, args.chunks * args.gap / 2000 + 0.5))
    rss_open = rss_kb(svc.proc.pid)
    open_at_sample = tally.open_now
    await asyncio.gather(*clients)
    elapsed = time.monotonic() - t0
    cpu = svc.cpu_seconds() - cpu_before
    user_after, sys_after = cpu_split(svc.proc.pid)
    relayed = tally.completed * (1 if args.whole else args.chunks)
    duration = (args.chunks - 1) * args.gap / 1000
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "completed": tally.completed,
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "streams_per_s": tally.completed / elapsed if elapsed else 0.0,
        "ideal_streams_per_s": concurrency / duration if duration else None,
        "cpu_s": cpu,
        "cpu_us_per_chunk": cpu * 1e6 / relayed if relayed else None,
        "cpu_us_per_stream": cpu * 1e6 / tally.completed if tally.completed else None,
        # the kernel's share (system time: socket reads and writes, epoll) of the main process
        "sys_share": (sys_after - sys_before)
        / max(1e-9, user_after - user_before + sys_after - sys_before),
        "ttfb_p50_ms": (percentile(tally.ttfb_us, 50) or 0) / 1000,
        "ttfb_p99_ms": (percentile(tally.ttfb_us, 99) or 0) / 1000,
        "reads_per_stream": statistics.median(tally.reads) if tally.reads else None,
        "rss_before_kb": rss_before,
        "rss_open_kb": rss_open,
        "open_at_sample": open_at_sample,
        "rss_per_open_stream_kb": (rss_open - rss_before) / open_at_sample
        if open_at_sample
        else None,
    }


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(want, soft)
    try:
        # the hard limit too (as root), so nginx's workers can take worker_rlimit_nofile
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def med(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else fmt.format(x)


def report(args: argparse.Namespace, raw: dict[str, Any]) -> str:
    rows: dict[str, list[dict[str, Any]]] = raw["phases"]
    direct = rows.get("direct", [])
    d50, d99 = med(direct, "ttfb_p50_ms"), med(direct, "ttfb_p99_ms")
    mode = f"--open {args.open}" if args.open else f"-c {args.concurrency}"
    lines = [
        f"# Relay cost of a slow stream ({raw['when']})",
        "",
        f"`{raw['command']}`",
        "",
        f"Machine: {raw['machine']}. Upstream: nginx + njs, `/slow/{args.chunks}/{args.gap}` "
        f"({args.chunks} chunks {args.gap} ms apart, {args.api} format); {mode}, "
        f"{args.seconds:.0f} s per phase, {args.rounds} round(s), gateways interleaved "
        f"(order alternating), medians over rounds. Pinning: {raw['pinning']}.",
        "",
        "| target | CPU µs/chunk | CPU µs/stream | streams/s (ideal) | TTFB p50 / p99 ms "
        "| added p50 / p99 ms | RSS KB/open stream | reads/stream | kernel share | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, phases in rows.items():
        p50, p99 = med(phases, "ttfb_p50_ms"), med(phases, "ttfb_p99_ms")
        added = (
            "—"
            if name == "direct" or d50 is None or p50 is None or p99 is None or d99 is None
            else f"{p50 - d50:.1f} / {p99 - d99:.1f}"
        )
        lines.append(
            f"| {name} | {_f(med(phases, 'cpu_us_per_chunk'), '{:.1f}')} "
            f"| {_f(med(phases, 'cpu_us_per_stream'), '{:,.0f}')} "
            f"| {_f(med(phases, 'streams_per_s'), '{:,.0f}')} "
            f"({_f(med(phases, 'ideal_streams_per_s'), '{:,.0f}')}) "
            f"| {_f(p50, '{:.1f}')} / {_f(p99, '{:.1f}')} | {added} "
            f"| {_f(med(phases, 'rss_per_open_stream_kb'), '{:.1f}')} "
            f"| {_f(med(phases, 'reads_per_stream'), '{:.0f}')} "
            f"| {_f(med(phases, 'sys_share'), '{:.0%}')} "
            f"| {sum(p['errors'] for p in phases)} |"
        )
    gws = [n for n in rows if n != "direct"]
    if len(gws) == 2:
        a, b = (med(rows[n], "cpu_us_per_chunk") for n in gws)
        if a and b:
            lines += ["", f"CPU per chunk, {gws[0]} / {gws[1]}: {a / b:.2f}"]
    lines += [
        "",
        "CPU µs/chunk = the gateway's CPU time over a phase / (streams completed x chunks per "
        "stream): it includes each stream's request handling, spread over its chunks. The "
        "direct row is nginx itself (its CPU, the TTFB baseline). Added TTFB = the gateway's "
        "percentile minus the direct upstream's. RSS per open stream = (RSS with every stream "
        "open - RSS just before the phase) / streams open at that moment. reads/stream ≈ "
        "chunks per stream shows chunks relayed as they arrive. Kernel share = system time / CPU "
        "time (socket reads and writes, epoll). Raw figures: the .json beside "
        "this file.",
    ]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace, services: dict[str, bench_run.Service]) -> dict:
    phases: dict[str, list[dict[str, Any]]] = {name: [] for name in services}
    gateways = [n for n in services if n != "direct"]
    if args.open:
        concurrency, seconds, ramp = args.open, args.seconds, args.ramp
    else:
        # clients start spread over one stream's length: not all in step (bursts)
        concurrency, seconds = args.concurrency, args.seconds
        ramp = (args.chunks - 1) * args.gap / 1000
    # warm-up: every target, a few streams, not recorded
    for name in services:
        await phase(services[name], args, min(50, concurrency), 1.0, 0.0)
    for r in range(args.rounds):
        order = gateways if r % 2 == 0 else gateways[::-1]
        for name in ["direct", *order]:
            res = await phase(services[name], args, concurrency, seconds, ramp)
            res["round"] = r
            phases[name].append(res)
            bench_run.log(
                f"round {r + 1}/{args.rounds} {name}: {res['completed']} streams, "
                f"{res['streams_per_s']:.0f}/s, "
                f"{_f(res['cpu_us_per_chunk'], '{:.1f}')} µs/chunk, "
                f"ttfb p50 {res['ttfb_p50_ms']:.1f} p99 {res['ttfb_p99_ms']:.1f} ms, "
                f"rss/open {_f(res['rss_per_open_stream_kb'], '{:.1f}')} KB, "
                f"errors {res['errors']} {res['error_kinds'] or ''}"
            )
    return phases


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="a `tollhouse` executable (or a command taking `serve --config C --port P`, "
        "such as `VENV/bin/python bench/granian_serve.py`) to measure; repeat for side by side",
    )
    p.add_argument("--chunks", type=int, default=20, help="chunks per stream (N)")
    p.add_argument("--gap", type=int, default=50, help="ms between chunks (D)")
    p.add_argument("--api", choices=["anthropic", "openai", "both"], default="both")
    p.add_argument(
        "--whole", action="store_true", help="whole answers (no stream), after (N - 1) x D ms"
    )
    p.add_argument("-c", "--concurrency", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10.0, help="per phase")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--open", type=int, default=0, metavar="C", help="open-streams mode")
    p.add_argument("--ramp", type=float, default=20.0, help="--open: seconds to open them")
    p.add_argument("--stream-timeout", type=float, default=30.0, help="beyond N x D")
    p.add_argument("--pool", type=int, default=None, help="providers' max_connections")
    p.add_argument(
        "--max-in-flight", type=int, default=None, help="reliability.max_in_flight (--open)"
    )
    p.add_argument("--cpus", default="0:1", help="LOAD:GATEWAY CPU lists; '' = no pinning")
    p.add_argument("--nginx", default="/usr/sbin/nginx")
    p.add_argument("--out", default=None, help="result file (default bench/results/relay-*.md)")
    args = p.parse_args(argv)
    if not args.gateway:
        default = BENCH / ".venv-tollhouse" / "bin" / "tollhouse"
        args.gateway = [f"tollhouse={default}"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_cpus, _, gw_cpus = args.cpus.partition(":")
    nofile = raise_nofile(4 * max(args.open, args.concurrency) + 4096)
    WORK.mkdir(parents=True, exist_ok=True)
    bench_run.WORK = WORK  # where its Service keeps logs and runs
    if load_cpus:
        os.sched_setaffinity(0, {int(c) for c in load_cpus.split(",")})
    services: dict[str, bench_run.Service] = {}
    up_port = bench_run.free_port()
    conf = bench_run.render(
        bench_run.UPSTREAM_DIR / "nginx.conf",
        WORK / "nginx.conf",
        {"__PORT__": str(up_port), "__WORK__": str(WORK), "__HERE__": str(bench_run.UPSTREAM_DIR)},
    )
    services["direct"] = bench_run.Service(
        "direct",
        [
            *bench_run.pin(load_cpus),
            args.nginx,
            "-e",
            str(WORK / "nginx-error.log"),
            "-c",
            str(conf),
        ],
        up_port,
        "/healthz",
        bench_run.clean_env(),
    )
    for spec in args.gateway:
        name, _, command = spec.partition("=")
        server = shlex.split(command)
        if not Path(server[0]).exists():
            raise SystemExit(f"{server[0]} not found (scripts/install-compiled.sh VENV builds one)")
        port = bench_run.free_port()
        cfg = WORK / f"{name}.yaml"
        cfg.write_text(
            gateway_config(
                f"127.0.0.1:{up_port}", args.chunks, args.gap, args.pool, args.max_in_flight
            )
        )
        services[name] = bench_run.Service(
            name,
            [*bench_run.pin(gw_cpus), *server, "serve", "--config", str(cfg), "--port", str(port)],
            port,
            "/healthz",
            bench_run.clean_env(BENCH_UPSTREAM_KEY=UPSTREAM_KEY),
        )
    try:
        for svc in services.values():
            svc.start()
        for svc in services.values():
            svc.wait_ready(60)
        try:
            import uvloop

            runner: Any = uvloop.run
        except ImportError:
            runner = asyncio.run
        phases = runner(main_async(args, services))
    finally:
        for svc in services.values():
            svc.stop()
    command = "python3 bench/relay_cost.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    raw = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, open-file limit {nofile}",
        "pinning": f"load (this client, nginx) on CPU {load_cpus}, gateways on CPU {gw_cpus}"
        if load_cpus
        else "none",
        "gateways": dict(s.partition("=")[::2] for s in args.gateway),
        "args": vars(args),
        "phases": phases,
    }
    out = (
        Path(args.out)
        if args.out
        else RESULTS
        / (f"relay-open-{args.open}.md" if args.open else f"relay-cost-c{args.concurrency}.md")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    text = report(args, raw)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
