#!/usr/bin/env python3
"""Memory held flat: a long steady mixed load on one gateway with everything on.

    python3 bench/soak.py                          # 30 minutes; writes bench/results/soak.md
    python3 bench/soak.py --duration 120 --warmup 30 --output /tmp/soak.md   # smoke test

Stdlib only, like run.py. Starts the built-in simulator as an HTTP upstream (`tollhouse
simulate`, paced: streams last a few hundred ms, and a few per cent of upstream attempts
fail: 500, 529, a reset connection, an error event or a broken connection mid-stream, a slow
first byte) and one `tollhouse serve` with every per-call feature on (gateway keys required,
a key with rate limits and a daily budget, the SQLite ledger, the JSON call log; run.py's
`everything_on`). Then `--clients` loops send, back to back, whole and streamed calls in both
formats, and some streams are dropped by the client after their first bytes.

Every `--interval` seconds (30) it samples the gateway's resident memory and open file
descriptors (from /proc) and its event loop's tasks (`tollhouse_event_loop_tasks` on
/metrics, which scrapes it too). After `--warmup` the samples must stay flat: the straight
line fitted through them may rise by at most `--tolerance` (5 %) of its mean over the window.
When the load stops, tasks and descriptors must come back to where they were idle before it
(measured after `--prime` seconds of the same load, so that what opens on first use is open).
Load and upstream are pinned to CPU 0, the gateway to CPU 1 (`--cpus`); loopback only, every
process stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: services, the everything-on config, keys

# What fails upstream, per attempt (the simulator's own RNG, seeded): ~6 % in all.
UPSTREAM_FAULTS = (
    ("500", 0.015),
    ("529", 0.01),
    ("reset", 0.01),
    ("mid-stream-error:3", 0.01),
    ("mid-stream-reset:3", 0.01),
    ("slow-first-byte:400", 0.005),
)
# The mix the clients send: (weight, format, stream).
MIX = (
    (35, "anthropic", False),
    (15, "openai", False),
    (30, "anthropic", True),
    (20, "openai", True),
)
LEDGER_WRITTEN = "tollhouse_ledger_records_total{fate=written,sink=ledger}"
DISCONNECT_SHARE = 0.05  # of streams, dropped by the client after their first bytes

GATEWAY_CONFIG = """\
server:
  host: 127.0.0.1
  port: 8080
providers:
  sim-anthropic:
    type: anthropic
    base_url: http://127.0.0.1:{port}
    api_key: env:BENCH_UPSTREAM_KEY
    simulator_headers: true
  sim-openai:
    type: openai
    base_url: http://127.0.0.1:{port}/v1
    api_key: env:BENCH_UPSTREAM_KEY
    simulator_headers: true
models:
  claude-haiku-4-5:
    deployments:
      - provider: sim-anthropic
        model: claude-haiku-4-5-20251001
  gpt-4o-mini:
    deployments:
      - provider: sim-openai
        model: gpt-4o-mini
"""


def simulator_config(seed: int) -> str:
    lines = [f"seed: {seed}", "ttft_ms: 30", "tokens_per_second: 300", "reply_tokens: 60"]
    lines.append("faults:")
    for fault, probability in UPSTREAM_FAULTS:
        lines.append(f"  - {{fault: '{fault}', probability: {probability}}}")
    return "\n".join(lines) + "\n"


def request_bytes(fmt: str, stream: bool, key: str, port: int, user: int) -> bytes:
    messages = [
        {"role": "user", "content": f"Say something about the number {user}."},
    ]
    if fmt == "anthropic":
        path = "/v1/messages"
        body: dict[str, Any] = {
            "model": "claude-haiku-4-5",
            "max_tokens": 128,
            "messages": messages,
        }
        auth = f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
    else:
        path = "/v1/chat/completions"
        body = {"model": "gpt-4o-mini", "max_tokens": 128, "messages": messages}
        if stream:
            body["stream_options"] = {"include_usage": True}
        auth = f"Authorization: Bearer {key}\r\n"
    if stream:
        body["stream"] = True
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


class Tally:
    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.disconnects = 0
        self.broken = 0  # connection errors on the client's side (not chosen by it)
        self.error_events = 0  # streams that ended in the format's error event

    def count(self, status: int) -> None:
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1

    @property
    def calls(self) -> int:
        return sum(self.statuses.values()) + self.disconnects + self.broken


async def read_response(reader: asyncio.StreamReader, drop_early: bool) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection stays usable; with `drop_early`, returns
    after the first body bytes (the caller closes the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        return status, body, keep
    if "chunked" not in headers.get("transfer-encoding", "").lower():
        return status, await reader.read(), False
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, bytes(body), keep
        body += await reader.readexactly(size + 2)
        if drop_early:
            return status, bytes(body), False


async def client(
    number: int, port: int, key: str, until: float, tally: Tally, rng: random.Random
) -> None:
    weights = [w for w, _, _ in MIX]
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < until:
        _, fmt, stream = rng.choices(MIX, weights)[0]
        drop = stream and rng.random() < DISCONNECT_SHARE
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(request_bytes(fmt, stream, key, port, rng.randrange(1000)))
            status, body, keep = await asyncio.wait_for(read_response(reader, drop), 60)
            if drop:
                tally.disconnects += 1
                keep = False
            else:
                tally.count(status)
                if stream and (b"event: error" in body or b'"error"' in body):
                    tally.error_events += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError):
            tally.broken += 1
            keep = False
        if not keep and writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            reader = writer = None
    if writer is not None:
        writer.close()


def metrics(port: int) -> dict[str, float]:
    """The gateway's samples by name (labels summed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            labels = line[len(name) :].rsplit(" ", 1)[0]
            if name == "tollhouse_ledger_records_total":  # per sink and fate
                name += "{" + ",".join(sorted(labels.strip("{}").replace('"', "").split(","))) + "}"
            found[name] = found.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def socket_peers() -> dict[str, int]:
    """Remote port of every TCP socket on this machine, by inode (from /proc/net/tcp)."""
    peers: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                peers[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    return peers


def process_sample(pid: int, upstream_port: int) -> dict[str, float]:
    """RSS, open descriptors, and how many of those are connections to the upstream (the
    connection pool keeps up to `max_connections` of them open while idle)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(status.split("VmRSS:")[1].split()[0])
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    peers = socket_peers()
    upstream = sum(
        1
        for target in targets
        if target.startswith("socket:[") and peers.get(target[8:-1]) == upstream_port
    )
    return {"rss_mb": rss_kb / 1024, "fds": len(targets), "upstream_fds": upstream}


def sample(
    gateway: run.Service, upstream_port: int, started: float, tally: Tally | None
) -> dict[str, Any]:
    assert gateway.proc is not None
    found = metrics(gateway.port)
    point: dict[str, Any] = {
        "t_s": round(time.monotonic() - started, 1),
        **process_sample(gateway.proc.pid, upstream_port),
        "tasks": found.get("tollhouse_event_loop_tasks", -1),
        "in_flight": found.get("tollhouse_in_flight_calls", -1),
        "calls_served": found.get("tollhouse_calls_total", 0),
        "ledger_written": found.get(LEDGER_WRITTEN, 0),
        "ledger_queue": found.get("tollhouse_ledger_queue_depth", 0),
        "cpu_s": gateway.cpu_seconds(),
    }
    if tally is not None:
        point["client_calls"] = tally.calls
    return point


def trend(points: list[dict[str, Any]], field: str) -> dict[str, float]:
    """The least-squares line through `field` over time: its rise across the window, as a
    share of the mean, and the range of the samples."""
    xs = [p["t_s"] for p in points]
    ys = [float(p[field]) for p in points]
    mean = statistics.fmean(ys)
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
    rise = slope * (xs[-1] - xs[0])
    return {
        "mean": mean,
        "min": min(ys),
        "max": max(ys),
        "first": ys[0],
        "last": ys[-1],
        "rise": rise,
        "rise_share": rise / mean if mean else 0.0,
    }


async def load(
    args: argparse.Namespace, gateway: run.Service, key: str, seconds: float
) -> dict[str, Any]:
    tally = Tally()
    started = time.monotonic()
    until = started + seconds
    rng = random.Random(args.seed)
    tasks = [
        asyncio.create_task(client(n, gateway.port, key, until, tally, random.Random(rng.random())))
        for n in range(args.clients)
    ]
    points: list[dict[str, Any]] = []
    missed: list[str] = []
    next_at = started + args.interval
    while time.monotonic() < until:
        await asyncio.sleep(max(0.0, min(next_at, until) - time.monotonic()))
        if time.monotonic() >= until:
            break
        try:
            point = await asyncio.to_thread(sample, gateway, args.upstream_port, started, tally)
        except OSError as error:  # a scrape that timed out is a finding, not the end
            missed.append(f"t={time.monotonic() - started:.0f}s: {error!r}")
            run.log(f"sample failed: {missed[-1]}")
            next_at += args.interval
            continue
        points.append(point)
        run.log(
            f"t={point['t_s']:7.0f}s  rss {point['rss_mb']:7.1f} MB  fds {point['fds']:5.0f} "
            f"({point['upstream_fds']:.0f} upstream)  "
            f"tasks {point['tasks']:5.0f}  in flight {point['in_flight']:4.0f}  "
            f"served {point['calls_served']:9.0f}  client {tally.calls:9d}  "
            f"statuses {tally.statuses}"
        )
        next_at += args.interval
    await asyncio.gather(*tasks)
    return {
        "points": points,
        "missed_samples": missed,
        "statuses": tally.statuses,
        "disconnects": tally.disconnects,
        "broken": tally.broken,
        "error_events": tally.error_events,
        "client_calls": tally.calls,
    }


def settle(
    gateway: run.Service, upstream_port: int, started: float, seconds: float
) -> dict[str, Any]:
    """A sample once the gateway is idle: no call in flight and its ledger queue empty (or
    `seconds` have passed), then a few seconds more for finished calls' tasks to end."""
    deadline = time.monotonic() + seconds
    point = sample(gateway, upstream_port, started, None)
    while time.monotonic() < deadline and (point["in_flight"] > 0 or point["ledger_queue"] > 0):
        time.sleep(1)
        point = sample(gateway, upstream_port, started, None)
    time.sleep(3)
    return sample(gateway, upstream_port, started, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=300, help="seconds not judged")
    parser.add_argument(
        "--prime", type=float, default=10, help="seconds of load before the idle sample"
    )
    parser.add_argument("--interval", type=float, default=30, help="seconds between samples")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client loops")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--cpus", default="0:1", help="load CPUs : gateway CPUs")
    parser.add_argument("--tollhouse", default=str(run.TOLLHOUSE))
    parser.add_argument("--output", default=str(run.RESULTS / "soak.md"))
    args = parser.parse_args()
    args.load_cpus, args.gw_cpus = [*args.cpus.split(":"), ""][:2]
    run.require_tollhouse(args.tollhouse)
    if args.load_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.load_cpus.split(",")})

    work = run.WORK
    work.mkdir(parents=True, exist_ok=True)
    key = run.create_key(args.tollhouse, work / "keys-soak.db")
    (work / "simulator.yaml").write_text(simulator_config(args.seed))
    sim_port = args.upstream_port = run.free_port()
    simulator = run.Service(
        "simulator",
        [
            *run.pin(args.load_cpus),
            args.tollhouse,
            "simulate",
            "--port",
            str(sim_port),
            "--config",
            str(work / "simulator.yaml"),
        ],
        sim_port,
        "/v1/models",
        run.clean_env(),
    )
    conf = work / "tollhouse-soak.yaml"
    conf.write_text(
        run.with_sections(GATEWAY_CONFIG.format(port=sim_port), run.everything_on(work, "soak"))
    )
    port = run.free_port()
    gateway = run.Service(
        "tollhouse-soak",
        [*run.pin(args.gw_cpus), args.tollhouse, "serve", "-c", str(conf), "-p", str(port)],
        port,
        "/readyz",
        run.clean_env(BENCH_UPSTREAM_KEY=run.UPSTREAM_KEY),
    )
    load_avg = [os.getloadavg()]
    try:
        simulator.start()
        simulator.wait_ready(60)
        gateway.start()
        gateway.wait_ready(60)
        # A few seconds of the same load first, so that what the gateway opens once, on
        # first use (the call log's file, pooled upstream connections), is open before the
        # idle sample the end is compared with.
        asyncio.run(load(args, gateway, key, args.prime))
        started = time.monotonic()
        idle_before = settle(gateway, sim_port, started, 60)
        run.log(f"idle before: {idle_before}")
        result = asyncio.run(load(args, gateway, key, args.duration))
        idle_after = settle(gateway, sim_port, started, 60)
        run.log(f"idle after: {idle_after}")
        load_avg.append(os.getloadavg())
        assert gateway.proc is not None
        served = metrics(gateway.port)
        gateway.stop()
        records = count_ledger(work / "ledger-soak.db")
        log_lines = sum(1 for _ in (work / "calls-soak.jsonl").open("rb"))
    finally:
        gateway.stop()
        simulator.stop()
    result.update(
        idle_before=idle_before,
        idle_after=idle_after,
        calls_served=served.get("tollhouse_calls_total", 0),
        ledger_records=records,
        call_log_lines=log_lines,
        load_avg=load_avg,
    )
    raw = run.RESULTS / "raw" / f"soak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(result, indent=1))
    report, ok = render_report(args, result)
    Path(args.output).write_text(report)
    print(report)
    return 0 if ok else 1


def count_ledger(db: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])


def render_report(args: argparse.Namespace, result: dict[str, Any]) -> tuple[str, bool]:
    points = result["points"]
    judged = [p for p in points if p["t_s"] >= args.warmup]
    before, after = result["idle_before"], result["idle_after"]
    mix = ", ".join(f"{w}% {f} {'streams' if s else 'whole'}" for w, f, s in MIX)
    lines = [
        f"# Soak: memory, descriptors and tasks under steady load "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`python3 bench/soak.py --duration {args.duration:g} --warmup {args.warmup:g} "
        f"--clients {args.clients} --tollhouse {run.shown(args.tollhouse)}`: one gateway with "
        "gateway keys required (a key with rate limits and a daily budget), the SQLite ledger "
        "and the JSON call log on, /metrics scraped every sample, in front of the built-in "
        "simulator over HTTP (60-token answers at 300 tokens/s after 30 ms; upstream faults on "
        f"~{sum(p for _, p in UPSTREAM_FAULTS):.0%} of attempts: "
        f"{', '.join(f for f, _ in UPSTREAM_FAULTS)}). {args.clients} client loops, back to "
        f"back: {mix}; "
        f"{DISCONNECT_SHARE:.0%} of streams dropped by the client after their first bytes. "
        f"Gateway on CPU {args.gw_cpus}, load and simulator on CPU {args.load_cpus}; the "
        f"machine's 2 CPUs shared with other work (load average "
        f"{', '.join(f'{a[0]:.2f}' for a in result['load_avg'])} at start and end).",
        "",
        f"Calls: {result['client_calls']:,} sent, {result['calls_served']:,.0f} counted by the "
        f"gateway, {result['ledger_records']:,} ledger records, {result['call_log_lines']:,} "
        f"call-log lines; client saw statuses {result['statuses']}, "
        f"{result['error_events']:,} streams ending in an error event, "
        f"{result['disconnects']:,} dropped on purpose, {result['broken']:,} broken. "
        f"Samples missed (a /metrics scrape that failed): "
        f"{'; '.join(result['missed_samples']) or 'none'}.",
        "",
        f"## After the {args.warmup:g} s warm-up ({len(judged)} samples, every "
        f"{args.interval:g} s)",
        "",
        "| measure | first | last | min | max | fitted rise over the window | verdict |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    ok = len(judged) >= 2
    for field, label in (("rss_mb", "RSS MB"), ("fds", "open fds"), ("tasks", "asyncio tasks")):
        if len(judged) < 2:
            break
        t = trend(judged, field)
        flat = abs(t["rise_share"]) <= args.tolerance
        ok = ok and flat
        lines.append(
            f"| {label} | {t['first']:,.1f} | {t['last']:,.1f} | {t['min']:,.1f} | "
            f"{t['max']:,.1f} | {t['rise']:+,.1f} ({t['rise_share']:+.1%}) | "
            f"{'flat' if flat else 'NOT flat'} (≤ {args.tolerance:.0%}) |"
        )
    # The upstream connections the pool keeps open while idle are not a leak (at most the
    # provider's max_connections); every other descriptor must be back.
    back = (
        after["tasks"] <= before["tasks"]
        and after["fds"] - after["upstream_fds"] <= before["fds"] - before["upstream_fds"]
    )
    ok = ok and back
    lines += [
        "",
        f"Idle before the load: {before['tasks']:.0f} tasks, {before['fds']:.0f} fds "
        f"({before['upstream_fds']:.0f} to the upstream), {before['rss_mb']:.1f} MB; idle "
        f"after it: {after['tasks']:.0f} tasks, {after['fds']:.0f} fds "
        f"({after['upstream_fds']:.0f} to the upstream, kept by the connection pool), "
        f"{after['rss_mb']:.1f} MB "
        f"({'back to idle' if back else 'NOT back to idle'}).",
        "",
        "| t s | RSS MB | fds | of them upstream | tasks | in flight | calls served "
        "| ledger written | gateway CPU s |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for p in points:
        lines.append(
            f"| {p['t_s']:.0f} | {p['rss_mb']:.1f} | {p['fds']:.0f} | {p['upstream_fds']:.0f} "
            f"| {p['tasks']:.0f} | "
            f"{p['in_flight']:.0f} | {p['calls_served']:,.0f} | {p['ledger_written']:,.0f} | "
            f"{p['cpu_s']:.0f} |"
        )
    lines += ["", f"Verdict: **{'flat' if ok else 'NOT flat'}**.", ""]
    return "\n".join(lines), ok


if __name__ == "__main__":
    sys.exit(main())
