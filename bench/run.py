#!/usr/bin/env python3
"""One-command gateway benchmark: direct-to-upstream vs Tollhouse vs the LiteLLM proxy.

    bash bench/setup.sh            # once: nginx+njs, wrk (Debian); bench/.venv-litellm
    python3 bench/run.py           # ~15 minutes; writes bench/results/latest.md
    python3 bench/run.py --quick   # smoke test, ~2 minutes

Starts a canned upstream (nginx, one worker, bench/upstream/), Tollhouse and the LiteLLM proxy
(one worker each) pointed at that same upstream, checks that every target returns the canned
answer in every scenario, then runs wrk against each target x scenario (Anthropic / OpenAI,
non-streaming / streaming) x concurrency (1, 32), repeated and interleaved so that noise on a
shared machine hits every target alike, plus a raw-socket time-to-first-byte probe for the
streaming scenarios. Reports medians. Stdlib only: any python3 >= 3.11 (Debian 12's).

By default the load side (wrk, the TTFB probe, nginx) is pinned to CPU 0 and the gateways to
CPU 1 (`--cpus 0:1`; `--no-pin` to disable), so a gateway never competes with its own load.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK_ROOT = BENCH / ".work"
# This run's own folder (configs rendered with the actual ports, logs, nginx pid and temp):
# bench/.work/run-<UTC time>-<pid>; the newest few are kept for inspection.
WORK = WORK_ROOT / f"run-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
KEEP_WORK_DIRS = 5
RESULTS = BENCH / "results"
UPSTREAM_DIR = BENCH / "upstream"
WRK_DIR = BENCH / "wrk"
CONFIGS = BENCH / "configs"
# Tollhouse as a production install runs it: admission path compiled with mypyc
# (scripts/install-compiled.sh, called by setup.sh; rebuild after changing the code).
TOLLHOUSE = BENCH / ".venv-tollhouse" / "bin" / "tollhouse"
NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")

# Sent by every client to every target (bench/wrk/common.lua has the same default). LiteLLM is
# started with it as its master key; Tollhouse runs open without gateway keys; nginx ignores it.
CLIENT_KEY = "sk-bench-4f1c2e9a7b3d5e8f0a6c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
# What the gateways send upstream (env:BENCH_UPSTREAM_KEY / os.environ/BENCH_UPSTREAM_KEY).
UPSTREAM_KEY = "sk-bench-upstream-key"
# The port in the committed configs; replaced by the upstream's actual port in bench/.work/.
CONFIG_UPSTREAM = "127.0.0.1:18081"

# `tollhouse`: the bench config as it is (defaults: the SQLite ledger on, no keys);
# `tollhouse-all`: the same with every per-call feature on (`everything_on`).
TARGETS = ("direct", "tollhouse", "tollhouse-all", "litellm")
GATEWAYS = ("tollhouse", "tollhouse-all", "litellm")


# The slow stream (bench/upstream/canned.js `slow`): SLOW_CHUNKS chunks SLOW_GAP_MS apart, as
# a model generating tokens sends them; the gateways reach it through their `*-slow` model.
SLOW_CHUNKS = 20
SLOW_GAP_MS = 50
SLOW_PREFIX = f"/slow/{SLOW_CHUNKS}/{SLOW_GAP_MS}"


@dataclass(frozen=True)
class Scenario:
    name: str
    api: str  # "anthropic" | "openai"
    path: str
    stream: bool
    direct_path: str | None = None  # where `direct` (nginx itself) is asked, if not `path`

    def target_path(self, target: str) -> str:
        return self.direct_path if target == "direct" and self.direct_path else self.path

    @property
    def slow(self) -> bool:
        return self.direct_path is not None

    @property
    def ideal_rps(self) -> float:
        """Streams per second per connection if the gateway added nothing (slow only)."""
        return 1000 / ((SLOW_CHUNKS - 1) * SLOW_GAP_MS)

    @property
    def script(self) -> Path:
        return WRK_DIR / f"{self.name}.lua"

    @property
    def body(self) -> bytes:
        return (WRK_DIR / "bodies" / f"{self.name}.json").read_bytes()


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("anthropic", "anthropic", "/v1/messages", stream=False),
        Scenario("openai", "openai", "/v1/chat/completions", stream=False),
        Scenario("anthropic-stream", "anthropic", "/v1/messages", stream=True),
        Scenario("openai-stream", "openai", "/v1/chat/completions", stream=True),
        Scenario(
            "slow-stream",
            "anthropic",
            "/v1/messages",
            stream=True,
            direct_path=f"{SLOW_PREFIX}/v1/messages",
        ),
    )
}


def canned_text() -> str:
    reply = json.loads((UPSTREAM_DIR / "canned" / "anthropic.json").read_text())
    return str(reply["content"][0]["text"])


def request_headers(
    scenario: Scenario, port: int, length: int, key: str | None = None
) -> list[tuple[str, str]]:
    """The same headers wrk sends (bench/wrk/common.lua), for the Python probes; `key`
    defaults to `CLIENT_KEY`."""
    key = key or CLIENT_KEY
    headers = [
        ("Host", f"127.0.0.1:{port}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("User-Agent", "tollhouse-bench/probe"),
    ]
    if scenario.api == "anthropic":
        headers += [("x-api-key", key), ("anthropic-version", "2023-06-01")]
    else:
        headers += [("Authorization", f"Bearer {key}")]
    headers.append(("Content-Length", str(length)))
    return headers


# --------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus else []


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for the services: no proxies (everything is loopback), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


class Service:
    """A server this script starts in its own process group, and always stops."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        health: str,
        env: dict[str, str],
        client_key: str | None = None,
    ) -> None:
        """`client_key`: the key clients present to it (default `CLIENT_KEY`)."""
        self.name = name
        self.client_key = client_key
        self.argv = argv
        self.port = port
        self.health = health
        self.env = env
        self.log = WORK / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=WORK,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.health}"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status < 500:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    | {line}" for line in text[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU time of every live process in the service's process group."""
        if self.proc is None:
            return 0.0
        pgid = self.proc.pid
        ticks = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # pgrp
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


# The key of the everything-on gateway: rpm, token and concurrency limits and a daily budget,
# all far above what a run on this machine reaches, so admission does all its work and
# refuses nothing.
KEY_LIMITS = (
    ("--rpm", "1000000000"),
    ("--input-tpm", "1000000000000"),
    ("--output-tpm", "1000000000000"),
    ("--concurrency", "100000"),
    ("--daily-budget", "1000000"),
)


def create_key(tollhouse: str, db: Path) -> str:
    """A gateway key with `KEY_LIMITS` in the SQLite key store `db`, made with Tollhouse's
    own CLI (`tollhouse keys create`, which prints the secret on stdout); its secret."""
    argv = [tollhouse, "keys", "create", "--sqlite", str(db), "--name", "bench"]
    argv += [word for option in KEY_LIMITS for word in option]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    secret = done.stdout.strip()
    if done.returncode != 0 or not secret:
        raise RuntimeError(f"tollhouse keys create failed: {done.stderr.strip()}")
    return secret


def everything_on(work: Path, name: str) -> str:
    """The config sections that turn every per-call feature on (each replaces the bench
    config's section of the same name): gateway keys required (the key from `create_key`
    on `work/keys-<name>.db`), in-process rate limits and budget, the SQLite ledger, the
    JSON call log to a file. Metrics are always on; the benchmarks also scrape them."""
    return (
        f"keys:\n  required: true\n  sqlite_path: {work}/keys-{name}.db\n"
        f"ledger:\n  backend: sqlite\n  sqlite_path: {work}/ledger-{name}.db\n"
        f"  spill_path: {work}/ledger-{name}.spill\n"
        f"logging:\n  level: warning\n  call_log: {work}/calls-{name}.jsonl\n"
    )


def with_sections(base: str, sections: str) -> str:
    """The YAML `base` with its top-level keys that `sections` defines replaced by them."""
    replaced = {line.split(":", 1)[0] for line in sections.splitlines() if line[:1].isalpha()}
    kept: list[str] = []
    skipping = False
    for line in base.splitlines(keepends=True):
        if line[:1].isalpha():
            skipping = line.split(":", 1)[0] in replaced
        if not skipping:
            kept.append(line)
    return "".join(kept) + sections


def cell(value: float | None, spec: str) -> str:
    """`value` formatted for a report's table cell; "-" when there is none."""
    return "-" if value is None else format(value, spec)


def shown(path: str) -> str:
    """`path` relative to the repository when it is inside it (for reports)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


class Scraper:
    """GETs /metrics on `port` every `interval` seconds until stopped, as Prometheus would."""

    def __init__(self, port: int, interval: float) -> None:
        self.port = port
        self.interval = interval
        self.scrapes = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        url = f"http://127.0.0.1:{self.port}/metrics"
        while not self._stop.wait(self.interval):
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    resp.read()
                self.scrapes += 1
            except OSError:
                self.failures += 1


def render(template: Path, dest: Path, replacements: dict[str, str]) -> Path:
    text = template.read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    dest.write_text(text)
    return dest


def require_tollhouse(path: str) -> None:
    if not Path(path).exists():
        raise SystemExit(
            f"{path} not found: run `bash bench/setup.sh` (it builds bench/.venv-tollhouse), "
            "or pass --tollhouse .venv/bin/tollhouse"
        )


def make_services(args: argparse.Namespace, targets: list[str]) -> dict[str, Service]:
    """The upstream (always) and the gateways in `targets`, not yet started."""
    load_cpus, gw_cpus = args.load_cpus, args.gw_cpus
    services: dict[str, Service] = {}

    up_port = free_port()
    conf = render(
        UPSTREAM_DIR / "nginx.conf",
        WORK / "nginx.conf",
        {"__PORT__": str(up_port), "__WORK__": str(WORK), "__HERE__": str(UPSTREAM_DIR)},
    )
    services["direct"] = Service(
        "direct",
        [*pin(load_cpus), args.nginx, "-e", str(WORK / "nginx-error.log"), "-c", str(conf)],
        up_port,
        "/healthz",
        clean_env(),
    )
    upstream = f"127.0.0.1:{up_port}"

    if "tollhouse" in targets:
        require_tollhouse(args.tollhouse)
        port = free_port()
        conf = render(
            CONFIGS / "tollhouse.yaml", WORK / "tollhouse.yaml", {CONFIG_UPSTREAM: upstream}
        )
        services["tollhouse"] = Service(
            "tollhouse",
            [*pin(gw_cpus), args.tollhouse, "serve", "--config", str(conf), "--port", str(port)],
            port,
            "/healthz",
            clean_env(BENCH_UPSTREAM_KEY=UPSTREAM_KEY),
        )

    if "tollhouse-all" in targets:
        require_tollhouse(args.tollhouse)
        port = free_port()
        base = (CONFIGS / "tollhouse.yaml").read_text().replace(CONFIG_UPSTREAM, upstream)
        conf = WORK / "tollhouse-all.yaml"
        # A config store of its own (else that of its keys store): gateways sharing one all
        # serve its newest version.
        store = f"config_store:\n  sqlite_path: {WORK}/config-all.db\n"
        conf.write_text(with_sections(base, everything_on(WORK, "all") + store))
        services["tollhouse-all"] = Service(
            "tollhouse-all",
            [*pin(gw_cpus), args.tollhouse, "serve", "--config", str(conf), "--port", str(port)],
            port,
            "/healthz",
            clean_env(BENCH_UPSTREAM_KEY=UPSTREAM_KEY),
            client_key=create_key(args.tollhouse, WORK / "keys-all.db"),
        )

    if "litellm" in targets:
        port = free_port()
        conf = render(CONFIGS / "litellm.yaml", WORK / "litellm.yaml", {CONFIG_UPSTREAM: upstream})
        services["litellm"] = Service(
            "litellm",
            [
                *pin(gw_cpus),
                args.litellm,
                "--config",
                str(conf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            port,
            "/health/liveliness",
            clean_env(
                BENCH_UPSTREAM_KEY=UPSTREAM_KEY,
                LITELLM_MASTER_KEY=CLIENT_KEY,
                LITELLM_LOG="ERROR",  # also uvicorn's log level: no access log
                LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch from the internet at import
                LITELLM_TELEMETRY_DISABLED="true",
                LITELLM_MODE="PRODUCTION",
            ),
        )
    return services


# --------------------------------------------------------------------------------------------
# raw HTTP/1.1 client: correctness checks and time to first byte


class _Chunked:
    """Incremental decoder of a chunked transfer-encoded body."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.out = bytearray()
        self.done = False

    def feed(self, data: bytes) -> None:
        self.buf += data
        while not self.done:
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return
            size = int(bytes(self.buf[:nl]).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                if self.buf[nl + 2 : nl + 4] == b"\r\n" or self.buf.find(b"\r\n\r\n", nl) >= 0:
                    self.done = True
                return
            end = nl + 2 + size
            if len(self.buf) < end + 2:
                return
            self.out += self.buf[nl + 2 : end]
            del self.buf[: end + 2]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    ttfb_ns: int  # request sent -> first body byte received
    total_ns: int  # request sent -> last body byte received


class RawClient:
    """One keep-alive HTTP/1.1 connection, timed with perf_counter_ns around each recv."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.port = port
        self.key = key
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _recv(self) -> tuple[bytes, int]:
        assert self.sock is not None
        data = self.sock.recv(262144)
        return data, time.perf_counter_ns()

    def request(self, scenario: Scenario, path: str | None = None) -> Reply:
        body = scenario.body
        head = f"POST {path or scenario.path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in request_headers(scenario, self.port, len(body), self.key)
        )
        raw = head.encode("latin-1") + b"\r\n" + body
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter_ns()
        self.sock.sendall(raw)
        buf = bytearray()
        while True:
            data, now = self._recv()
            if not data:
                self.close()
                raise ConnectionError("connection closed before the response headers")
            buf += data
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = bytes(buf[end + 4 :])
        first = now if rest else 0
        last = now
        if "content-length" in headers:
            need = int(headers["content-length"])
            got = bytearray(rest)
            while len(got) < need:
                data, last = self._recv()
                if not data:
                    raise ConnectionError("connection closed mid-body")
                first = first or last
                got += data
            payload = bytes(got[:need])
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            dec = _Chunked()
            dec.feed(rest)
            while not dec.done:
                data, last = self._recv()
                if not data:
                    raise ConnectionError("connection closed mid-body")
                first = first or last
                dec.feed(data)
            payload = bytes(dec.out)
        else:  # delimited by close
            got = bytearray(rest)
            while True:
                data, now = self._recv()
                if not data:
                    break
                last = now
                first = first or now
                got += data
            payload = bytes(got)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        first = first or last
        return Reply(status, headers, payload, first - t0, last - t0)


def check_reply(scenario: Scenario, reply: Reply, text: str) -> str | None:
    """None if `reply` is the canned answer in the scenario's format, else what is wrong."""
    if reply.status != 200:
        return f"status {reply.status}: {reply.body[:300]!r}"
    ctype = reply.headers.get("content-type", "")
    want = "text/event-stream" if scenario.stream else "application/json"
    if not ctype.startswith(want):
        return f"content-type {ctype!r}, expected {want}"
    try:
        if not scenario.stream:
            doc = json.loads(reply.body)
            got = (
                doc["content"][0]["text"]
                if scenario.api == "anthropic"
                else doc["choices"][0]["message"]["content"]
            )
        else:
            events = [
                line[5:].strip()
                for line in reply.body.decode().splitlines()
                if line.startswith("data:")
            ]
            if scenario.api == "anthropic":
                docs = [json.loads(e) for e in events]
                if not docs or docs[-1].get("type") != "message_stop":
                    return "stream does not end with message_stop"
                got = "".join(
                    d["delta"].get("text", "") for d in docs if d["type"] == "content_block_delta"
                )
            else:
                if not events or events[-1] != "[DONE]":
                    return "stream does not end with data: [DONE]"
                docs = [json.loads(e) for e in events[:-1]]
                got = "".join(
                    (c.get("delta") or {}).get("content") or ""
                    for d in docs
                    for c in d.get("choices", [])
                )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"cannot parse the reply ({exc!r}): {reply.body[:300]!r}"
    if scenario.slow and got and text.startswith(got):
        return None  # the slow upstream streams the first SLOW_CHUNKS canned deltas
    if got != text:
        return f"text {got[:80]!r}... differs from the canned answer"
    return None


def ttfb_probe(
    port: int, scenario: Scenario, seconds: float, key: str | None = None, path: str | None = None
) -> dict[str, Any]:
    """Sequential requests (concurrency 1) on one keep-alive connection for `seconds`."""
    client = RawClient(port, key)
    try:
        client.request(scenario, path)  # connect and warm the connection; not timed
        ttfb: list[int] = []
        total: list[int] = []
        bad = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            reply = client.request(scenario, path)
            if reply.status != 200:
                bad += 1
            ttfb.append(reply.ttfb_ns)
            total.append(reply.total_ns)
    finally:
        client.close()
    return {
        "requests": len(ttfb),
        "non_2xx": bad,
        "valid": bad == 0 and len(ttfb) > 0,
        "ttfb_us": percentiles([t / 1000 for t in ttfb]),
        "total_us": percentiles([t / 1000 for t in total]),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)

    def pct(p: float) -> float:
        return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]

    return {"p50": pct(50), "p90": pct(90), "p99": pct(99), "mean": statistics.fmean(v)}


# --------------------------------------------------------------------------------------------
# wrk


def run_wrk(
    args: argparse.Namespace,
    port: int,
    scenario: Scenario,
    conc: int,
    seconds: float,
    service: Service | None,
    key: str | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """One wrk run against `port` (at `path`, default the scenario's); `service`, given, has
    its CPU time measured; `key` is the gateway key wrk presents (default `CLIENT_KEY`)."""
    threads = 1 if conc == 1 else 2
    argv = [
        *pin(args.load_cpus),
        args.wrk,
        f"-t{threads}",
        f"-c{conc}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "60s" if scenario.slow else "10s",
        "--latency",
        "-s",
        str(scenario.script),
        f"http://127.0.0.1:{port}{path or scenario.path}",
    ]
    cpu0 = service.cpu_seconds() if service else 0.0
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        env=clean_env(BENCH_CLIENT_KEY=key or CLIENT_KEY),
        check=False,
    )
    cpu = (service.cpu_seconds() - cpu0) if service else None
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        return {"valid": False, "problem": f"wrk failed ({proc.returncode}): {proc.stderr[-500:]}"}
    res: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
    errors = sum(res["errors"].values())
    res["valid"] = res["requests"] > 0 and errors == 0
    if errors:
        res["problem"] = f"{errors} errors: {res['errors']}"
    elif res["requests"] == 0:
        res["problem"] = "no request completed"
    if cpu is not None and res["requests"]:
        res["gateway_cpu_s"] = cpu
        res["gateway_cpu_us_per_req"] = cpu * 1e6 / res["requests"]
    return res


# --------------------------------------------------------------------------------------------
# machine


def _cmd(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (proc.stdout.strip() or proc.stderr.strip() or "?").splitlines()[0]


def cpu_times() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def busy_processes() -> list[str]:
    """Other load generators / servers already running (a shared machine): `wrk`, nginx, ..."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        words = cmd.split() or [""]
        server = any(w.endswith(("/tollhouse", "/litellm")) for w in words[:2])
        if Path(words[0]).name in ("wrk", "nginx:", "nginx") or server:
            found.append(f"{entry} {cmd.strip()[:100]}")
    return found


def machine_info(args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    debian = "?"
    with contextlib.suppress(OSError):
        debian = Path("/etc/debian_version").read_text().strip()
    info: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "kernel": platform.release(),
        "debian": debian,
        "python": platform.python_version(),
        "nginx": _cmd([args.nginx, "-v"]).replace("nginx version: ", ""),
        "wrk": "wrk " + _cmd([args.wrk, "-v"]).split()[1],
        "loadavg_start": os.getloadavg(),
        "busy_at_start": busy_processes(),
        "pinning": f"load (wrk, probe, nginx) on CPU {args.load_cpus}, gateways on CPU "
        f"{args.gw_cpus}"
        if args.load_cpus
        else "none",
    }
    if "litellm" in targets:
        py = str(Path(args.litellm).with_name("python"))
        info["litellm"] = _cmd(
            [py, "-c", "import importlib.metadata as m; print(m.version('litellm'))"]
        )
    if "tollhouse" in targets:
        py = str(Path(args.tollhouse).with_name("python"))
        info["tollhouse"] = _cmd(
            [py, "-c", "import importlib.metadata as m; print(m.version('tollhouse'))"]
        )
        commit = _cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
        dirty = _cmd(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"])
        changed = dirty not in ("?", "")
        info["tollhouse_commit"] = commit + (" + uncommitted changes in src/" if changed else "")
    return info


# --------------------------------------------------------------------------------------------
# the run


def log(msg: str) -> None:
    print(msg, flush=True)


def fmt_run(res: dict[str, Any]) -> str:
    if not res.get("valid"):
        return f"INVALID ({res.get('problem', '?')})"
    lat = res["latency_us"]
    cpu = res.get("gateway_cpu_us_per_req")
    extra = f", gateway CPU {cpu:.0f} µs/req" if cpu is not None else ""
    return (
        f"{res['rps']:9.1f} req/s  p50 {lat['p50'] / 1000:8.3f} ms  "
        f"p99 {lat['p99'] / 1000:8.3f} ms{extra}"
    )


def prune_work_dirs() -> None:
    """Remove all but the newest few run folders, never one whose run is still going (the
    pid in its name alive): a soak or another benchmark may be using it."""
    runs = sorted(
        p for p in WORK_ROOT.glob("run-*") if p.is_dir() and p != WORK and not _running(p)
    )
    for old in runs[: max(0, len(runs) - (KEEP_WORK_DIRS - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def _running(work: Path) -> bool:
    pid = work.name.rsplit("-", 1)[-1]
    return pid.isdigit() and Path(f"/proc/{pid}").exists()


def concs_of(sc: Scenario, settings: argparse.Namespace | dict[str, Any]) -> list[int]:
    """The concurrencies `sc` is measured at: `--slow-concurrency` for the slow stream, else
    `--concurrency` (from the parsed arguments, or a raw file's settings)."""
    found = vars(settings) if isinstance(settings, argparse.Namespace) else settings
    if sc.slow:
        return list(found.get("slow_concurrency") or [])
    return list(found["concurrency"])


def ensure_alive(services: dict[str, Service]) -> None:
    """Fail loudly (not with a pile of invalid runs) when a service has gone away."""
    for name, svc in services.items():
        if svc.proc is not None and svc.proc.poll() is not None:
            raise RuntimeError(
                f"{name} (pid {svc.proc.pid}) exited with {svc.proc.returncode} in the middle of "
                f"the run: crashed, or killed from outside (a broad pkill/killall?)\n"
                f"{svc.log_tail()}"
            )


def benchmark(args: argparse.Namespace, targets: list[str], scenarios: list[Scenario]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    prune_work_dirs()
    (RESULTS / "raw").mkdir(parents=True, exist_ok=True)
    text = canned_text()
    started = time.time()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    raw_path = RESULTS / "raw" / f"{stamp}.json"
    steal0 = cpu_times()
    machine = machine_info(args, targets)
    if machine["busy_at_start"] or machine["loadavg_start"][0] > 0.5:
        log(
            f"WARNING: the machine is busy (load average {machine['loadavg_start'][0]:.2f}); "
            "other servers / load generators running:\n  "
            + "\n  ".join(machine["busy_at_start"] or ["none found"])
        )
    command = "python3 " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]]
    )
    settings = {
        "duration_s": args.duration,
        "repeats": args.repeats,
        "concurrency": args.concurrency,
        "slow_concurrency": args.slow_concurrency,
        "slow_duration_s": args.slow_duration,
        "warmup_s": args.warmup,
        "ttfb_s": None if args.no_ttfb else args.ttfb_duration,
        "targets": targets,
        "scenarios": [sc.name for sc in scenarios],
        "workdir": os.path.relpath(WORK, REPO),
    }
    runs: list[dict[str, Any]] = []

    def save_raw(complete: bool, summary: dict[str, Any] | None = None) -> None:
        """Raw JSON after every run, so an interrupted run still leaves its data behind."""
        doc = {
            "command": command,
            "complete": complete,
            "settings": settings,
            "machine": machine,
            "summary": summary,
            "runs": runs,
        }
        raw_path.write_text(json.dumps(doc, indent=1))

    services = make_services(args, targets)
    complete = False
    stack = contextlib.ExitStack()
    try:
        # (a)-(c): start the upstream and the gateways; all stay up for the whole run
        for name, svc in services.items():
            log(f"starting {name} on 127.0.0.1:{svc.port}: {' '.join(svc.argv)}")
            svc.start()
        for name, svc in services.items():
            svc.wait_ready(args.startup_timeout if name == "litellm" else 60)
            log(f"  {name} ready")
        if args.serve:
            log("\n--serve: targets are up (Ctrl-C stops them):")
            for name in targets:
                log(f"  {name:10s} http://127.0.0.1:{services[name].port}")
            signal.pause()
            return

        if "tollhouse-all" in services:  # its metrics are on: scraped as Prometheus would
            scraper = Scraper(services["tollhouse-all"].port, 1.0)
            stack.enter_context(scraper)

        # correctness: every target, every scenario, the canned answer in the right format
        for name in targets:
            client = RawClient(services[name].port, services[name].client_key)
            try:
                for sc in scenarios:
                    problem = check_reply(sc, client.request(sc, sc.target_path(name)), text)
                    if problem:
                        raise RuntimeError(
                            f"{name} / {sc.name}: {problem}\n{services[name].log_tail()}"
                        )
            finally:
                client.close()
        log(f"checked: every target returns the canned answer in {len(scenarios)} scenarios")

        # (d) warm-up, not recorded
        for name in targets:
            for sc in scenarios:
                res = run_wrk(
                    args,
                    services[name].port,
                    sc,
                    8,
                    args.warmup,
                    None,
                    services[name].client_key,
                    sc.target_path(name),
                )
                log(f"warm-up {name:9s} {sc.name:16s} {fmt_run(res)}")

        # measured runs: repeats x scenarios x concurrency, targets interleaved and rotated
        total = args.repeats * len(targets) * sum(len(concs_of(sc, args)) for sc in scenarios)
        eta = (
            args.repeats
            * len(targets)
            * sum(
                len(concs_of(sc, args)) * ((args.slow_duration if sc.slow else args.duration) + 1.5)
                for sc in scenarios
            )
        )
        if not args.no_ttfb:
            eta += (
                args.repeats
                * sum(sc.stream for sc in scenarios)
                * len(targets)
                * (args.ttfb_duration + 0.5)
            )
        log(f"\n{total} wrk runs of {args.duration:g} s: about {eta / 60:.0f} min to go")
        for rep in range(args.repeats):
            order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
            for sc in scenarios:
                for conc in concs_of(sc, args):
                    for name in order:
                        ensure_alive(services)
                        svc = services[name] if name in GATEWAYS else None
                        res = run_wrk(
                            args,
                            services[name].port,
                            sc,
                            conc,
                            args.slow_duration if sc.slow else args.duration,
                            svc,
                            services[name].client_key,
                            sc.target_path(name),
                        )
                        res.update(target=name, scenario=sc.name, concurrency=conc, repeat=rep)
                        runs.append(res)
                        save_raw(False)
                        log(
                            f"[{rep + 1}/{args.repeats}] {sc.name:16s} c={conc:<3d} "
                            f"{name:9s} {fmt_run(res)}"
                        )
                        time.sleep(0.3)
            # time to first byte, streaming scenarios, concurrency 1
            if not args.no_ttfb:
                for sc in scenarios:
                    if not sc.stream:
                        continue
                    for name in order:
                        ensure_alive(services)
                        res = ttfb_probe(
                            services[name].port,
                            sc,
                            args.ttfb_duration,
                            services[name].client_key,
                            sc.target_path(name),
                        )
                        res.update(target=name, scenario=sc.name, concurrency=1, repeat=rep)
                        res["kind"] = "ttfb"
                        runs.append(res)
                        save_raw(False)
                        t = res["ttfb_us"]
                        log(
                            f"[{rep + 1}/{args.repeats}] {sc.name:16s} TTFB  {name:9s} "
                            f"p50 {t['p50'] / 1000:8.3f} ms  p99 {t['p99'] / 1000:8.3f} ms  "
                            f"({res['requests']} req{'' if res['valid'] else ', INVALID'})"
                        )
        ensure_alive(services)
        complete = True
    finally:
        stack.close()
        for svc in reversed(list(services.values())):
            svc.stop()
        if runs and not complete:
            log(
                f"\nincomplete run: {len(runs)} results so far in {os.path.relpath(raw_path, REPO)}"
            )

    steal1 = cpu_times()
    deltas = [b - a for a, b in zip(steal0, steal1, strict=True)]
    machine["loadavg_end"] = os.getloadavg()
    machine["cpu_steal_pct"] = round(100 * deltas[7] / max(1, sum(deltas)), 2)
    machine["wall_minutes"] = round((time.time() - started) / 60, 1)
    summary = summarize(runs, targets, scenarios, settings)
    save_raw(True, summary)
    md = report(command, settings, machine, summary, targets, scenarios, raw_path)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    log(f"\nraw results: {os.path.relpath(raw_path, REPO)}\nreport: {os.path.relpath(out, REPO)}\n")
    log(md)


# --------------------------------------------------------------------------------------------
# summary and report


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    runs: list[dict[str, Any]],
    targets: list[str],
    scenarios: list[Scenario],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Medians over the valid repeats; "added" = median over repeats of (gateway - direct)."""
    wrk_runs = [r for r in runs if r.get("kind") != "ttfb"]
    ttfb_runs = [r for r in runs if r.get("kind") == "ttfb"]
    cells: dict[str, Any] = {}
    for sc in scenarios:
        for conc in concs_of(sc, settings):
            direct = {
                r["repeat"]: r
                for r in wrk_runs
                if r["target"] == "direct"
                and r["scenario"] == sc.name
                and r["concurrency"] == conc
                and r["valid"]
            }
            for name in targets:
                mine = [
                    r
                    for r in wrk_runs
                    if r["target"] == name and r["scenario"] == sc.name and r["concurrency"] == conc
                ]
                ok = [r for r in mine if r["valid"]]
                cell: dict[str, Any] = {
                    "runs": len(mine),
                    "valid_runs": len(ok),
                    "rps": _median([r["rps"] for r in ok]),
                    "rps_min": min((r["rps"] for r in ok), default=None),
                    "rps_max": max((r["rps"] for r in ok), default=None),
                    "p50_us": _median([r["latency_us"]["p50"] for r in ok]),
                    "p99_us": _median([r["latency_us"]["p99"] for r in ok]),
                    "gateway_cpu_us_per_req": _median(
                        [r["gateway_cpu_us_per_req"] for r in ok if "gateway_cpu_us_per_req" in r]
                    ),
                }
                if name != "direct":
                    pairs = [(r, direct[r["repeat"]]) for r in ok if r["repeat"] in direct]
                    for p in ("p50", "p99"):
                        cell[f"added_{p}_us"] = _median(
                            [g["latency_us"][p] - d["latency_us"][p] for g, d in pairs]
                        )
                cells[f"{sc.name}|{conc}|{name}"] = cell
        if sc.stream:
            d_ttfb = {
                r["repeat"]: r
                for r in ttfb_runs
                if r["target"] == "direct" and r["scenario"] == sc.name and r["valid"]
            }
            for name in targets:
                ok = [
                    r
                    for r in ttfb_runs
                    if r["target"] == name and r["scenario"] == sc.name and r["valid"]
                ]
                if not ok:
                    continue
                cell = {
                    "valid_runs": len(ok),
                    "ttfb_p50_us": _median([r["ttfb_us"]["p50"] for r in ok]),
                    "ttfb_p99_us": _median([r["ttfb_us"]["p99"] for r in ok]),
                    "total_p50_us": _median([r["total_us"]["p50"] for r in ok]),
                }
                if name != "direct":
                    cell["added_ttfb_p50_us"] = _median(
                        [
                            r["ttfb_us"]["p50"] - d_ttfb[r["repeat"]]["ttfb_us"]["p50"]
                            for r in ok
                            if r["repeat"] in d_ttfb
                        ]
                    )
                cells[f"{sc.name}|ttfb|{name}"] = cell
    return cells


def _ms(us: float | None, signed: bool = False) -> str:
    if us is None:
        return "—"
    return f"{us / 1000:+.3f}" if signed else f"{us / 1000:.3f}"


def _s(us: float | None) -> str:
    return "—" if us is None else f"{us / 1e6:.2f}"


def _times(gateway: dict[str, Any], peer: dict[str, Any]) -> str:
    """How many times the peer's throughput `gateway` had ("—" without both)."""
    if gateway.get("rps") and peer.get("rps"):
        return f"{gateway['rps'] / peer['rps']:.1f}×"
    return "—"


def _num(x: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def report(
    command: str,
    settings: dict[str, Any],
    machine: dict[str, Any],
    summary: dict[str, Any],
    targets: list[str],
    scenarios: list[Scenario],
    raw_path: Path,
) -> str:
    m = machine
    out = [
        "# Tollhouse benchmark: direct vs Tollhouse vs LiteLLM",
        "",
        f"Generated by `bench/run.py` on {m['date_utc']}. Command (from the repository root):",
        "",
        f"    {command}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory']}, Linux {m['kernel']}, "
        f"Debian {m['debian']}; CPU pinning: {m['pinning']}. Load average "
        f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; CPU steal "
        f"{m['cpu_steal_pct']}% over the run ({m['wall_minutes']} min).  ",
        f"Versions: {m['nginx'].replace('nginx version: ', '')} (+njs), "
        f"{' '.join(m['wrk'].split()[:2])}, Python {m['python']}"
        + (f", Tollhouse {m['tollhouse']} ({m['tollhouse_commit']})" if "tollhouse" in m else "")
        + (f", LiteLLM {m['litellm']}" if "litellm" in m else "")
        + ".  ",
        *(
            [
                f"**Busy machine**: {len(m['busy_at_start'])} other server / load-generator "
                "process(es) were running at start (see the raw JSON), so absolute numbers "
                "are noisier than usual.  "
            ]
            if m["busy_at_start"]
            else []
        ),
        f"Each cell: median of {settings['repeats']} interleaved runs of {settings['duration_s']:g}"
        f" s ({settings.get('slow_duration_s') or settings['duration_s']:g} s for the slow "
        "stream; wrk, keep-alive; 1 thread at c=1, 2 threads above). Raw: "
        f"`{os.path.relpath(raw_path, REPO)}` (git-ignored).",
        "",
        "**added** = gateway minus direct in the same repeat, median over repeats: the latency "
        "the gateway adds on top of the upstream. **CPU/req** = the gateway process's CPU time "
        "over the run divided by the requests served. Latencies in ms. A run with any error or "
        "non-2xx response is invalid and left out (**runs** = valid/total).",
        "",
        "## Throughput and latency (wrk)",
        "",
        "| scenario | c | target | req/s | p50 | p99 | added p50 | added p99 | CPU/req µs | runs |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for sc in scenarios:
        for conc in concs_of(sc, settings):
            for name in targets:
                c = summary.get(f"{sc.name}|{conc}|{name}")
                if c is None:
                    continue
                rps = "invalid" if c["rps"] is None else _num(c["rps"])
                out.append(
                    f"| {sc.name} | {conc} | {name} | {rps} | {_ms(c['p50_us'])} | "
                    f"{_ms(c['p99_us'])} | {_ms(c.get('added_p50_us'), True)} | "
                    f"{_ms(c.get('added_p99_us'), True)} | "
                    f"{_num(c['gateway_cpu_us_per_req'])} | {c['valid_runs']}/{c['runs']} |"
                )
    if "tollhouse" in targets and "litellm" in targets:
        out += [
            "",
            "## Tollhouse vs LiteLLM",
            "",
            "`tollhouse-all`: the same Tollhouse with gateway keys required (a key with rate "
            "limits and a daily budget), the SQLite ledger, the JSON call log and /metrics "
            "scraped every second; `tollhouse` runs the bench config's defaults (the SQLite "
            "ledger, no keys).",
            "",
            "| scenario | c | Tollhouse req/s | everything on req/s | LiteLLM req/s | "
            "throughput ratio | everything on / LiteLLM | Tollhouse added p50 | "
            "LiteLLM added p50 |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for sc in scenarios:
            for conc in concs_of(sc, settings):
                t = summary.get(f"{sc.name}|{conc}|tollhouse") or {}
                a = summary.get(f"{sc.name}|{conc}|tollhouse-all") or {}
                ll = summary.get(f"{sc.name}|{conc}|litellm") or {}
                out.append(
                    f"| {sc.name} | {conc} | {_num(t.get('rps'))} | {_num(a.get('rps'))} | "
                    f"{_num(ll.get('rps'))} | {_times(t, ll)} | {_times(a, ll)} | "
                    f"{_ms(t.get('added_p50_us'), True)} | {_ms(ll.get('added_p50_us'), True)} |"
                )
    slow = [sc for sc in scenarios if sc.slow]
    if slow:
        out += [
            "",
            "## Slow streams",
            "",
            f"`slow-stream`: the upstream sends each answer in {SLOW_CHUNKS} chunks "
            f"{SLOW_GAP_MS} ms apart (`{SLOW_PREFIX}/v1/messages`, as a model generating "
            "tokens), so a stream lasts at least "
            f"{(SLOW_CHUNKS - 1) * SLOW_GAP_MS / 1000:g} s and c open streams can at best end "
            f"c / {(SLOW_CHUNKS - 1) * SLOW_GAP_MS / 1000:g} s per second (**ideal**). "
            "Latency is the whole stream's.",
            "",
            "| c | target | streams/s | share of ideal | p50 s | p99 s | CPU/stream µs | runs |",
            "|--:|---|--:|--:|--:|--:|--:|--:|",
        ]
        for sc in slow:
            for conc in concs_of(sc, settings):
                ideal = conc * sc.ideal_rps
                for name in targets:
                    c = summary.get(f"{sc.name}|{conc}|{name}")
                    if c is None:
                        continue
                    share = f"{c['rps'] / ideal:.0%}" if c["rps"] else "—"
                    out.append(
                        f"| {conc} | {name} | {_num(c['rps'], '{:,.1f}')} | {share} | "
                        f"{_s(c['p50_us'])} | {_s(c['p99_us'])} | "
                        f"{_num(c['gateway_cpu_us_per_req'])} | {c['valid_runs']}/{c['runs']} |"
                    )
    ttfb_rows = [
        (sc, name, summary[f"{sc.name}|ttfb|{name}"])
        for sc in scenarios
        if sc.stream
        for name in targets
        if f"{sc.name}|ttfb|{name}" in summary
    ]
    if ttfb_rows:
        out += [
            "",
            "## Streaming: time to first byte (c=1)",
            "",
            "wrk times a streamed response to its last byte. The canned upstream writes the "
            "whole stream at once, so for `direct` first byte ≈ last byte, but a gateway relays "
            "event by event, so its first byte can come well before its last. This probe "
            "(`run.py`, raw sockets, one keep-alive connection, sequential requests for "
            f"{settings['ttfb_s']:g} s per repeat) times request sent → first body byte "
            "received, and → last byte.",
            "",
            "| scenario | target | TTFB p50 | TTFB p99 | added TTFB p50 | full response p50 |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for sc, name, c in ttfb_rows:
            out.append(
                f"| {sc.name} | {name} | {_ms(c['ttfb_p50_us'])} | {_ms(c['ttfb_p99_us'])} | "
                f"{_ms(c.get('added_ttfb_p50_us'), True)} | {_ms(c['total_p50_us'])} |"
            )
    if "tollhouse" in targets:
        out += ["", "## Targets (issue)", ""]
        for sc in scenarios:
            t1 = summary.get(f"{sc.name}|1|tollhouse") or {}
            added = t1.get("added_p50_us")
            if added is not None:
                ok = "met" if added <= 500 else "NOT met"
                out.append(
                    f"- {sc.name}: Tollhouse added p50 at c=1 = {added / 1000:.3f} ms "
                    f"(target ≤ 0.5 ms): **{ok}**"
                )
            if "litellm" in targets and concs_of(sc, settings):
                conc = max(concs_of(sc, settings))
                t = summary.get(f"{sc.name}|{conc}|tollhouse") or {}
                ll = summary.get(f"{sc.name}|{conc}|litellm") or {}
                if t.get("rps") and ll.get("rps"):
                    r = t["rps"] / ll["rps"]
                    ok = "met" if r >= 20 else "NOT met"
                    out.append(
                        f"- {sc.name}: Tollhouse / LiteLLM throughput at c={conc} = {r:.1f}× "
                        f"(target ≥ 20×): **{ok}**"
                    )
    out += [
        "",
        "See `bench/README.md` for what is measured, how, and the caveats.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark direct-to-upstream vs Tollhouse vs the LiteLLM proxy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    p.add_argument("--repeats", type=int, default=3, help="runs per target x scenario x c")
    p.add_argument("--only", default=",".join(TARGETS), help="targets, comma-separated")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    p.add_argument("--concurrency", default="1,32", help="wrk connections, comma-separated")
    p.add_argument(
        "--slow-concurrency",
        default="200,1000",
        help="wrk connections for the slow-stream scenario, comma-separated",
    )
    p.add_argument(
        "--slow-duration",
        type=float,
        default=20,
        help="seconds per wrk run of the slow stream (each stream lasts about 1 s)",
    )
    p.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    p.add_argument(
        "--ttfb-duration", type=float, default=5, help="seconds per TTFB probe (streaming)"
    )
    p.add_argument("--no-ttfb", action="store_true", help="skip the TTFB probe")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 s runs, 1 repeat")
    p.add_argument(
        "--cpus",
        default="0:1",
        help="LOAD:GATEWAY CPU lists for taskset (load = wrk, probe, nginx)",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument(
        "--output", default=str(RESULTS / "latest.md"), help="where to write the markdown"
    )
    p.add_argument("--serve", action="store_true", help="start the targets, print URLs, wait")
    p.add_argument(
        "--report-from",
        metavar="RAW_JSON",
        help="only rewrite the markdown (--output) from a raw results file, measuring nothing",
    )
    p.add_argument("--startup-timeout", type=float, default=180, help="seconds for LiteLLM")
    p.add_argument("--tollhouse", default=str(TOLLHOUSE))
    p.add_argument("--litellm", default=str(BENCH / ".venv-litellm" / "bin" / "litellm"))
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.repeats, args.warmup, args.ttfb_duration = 2, 1, 1, 1
        args.slow_duration = 4
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.slow_concurrency = [int(c) for c in args.slow_concurrency.split(",") if c]
    if args.no_pin or (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        args.load_cpus = args.gw_cpus = None
    else:
        args.load_cpus, _, args.gw_cpus = args.cpus.partition(":")
    return args


def report_from(raw: Path, output: Path) -> None:
    doc = json.loads(raw.read_text())
    settings = doc["settings"]
    targets = settings["targets"]
    scenarios = [SCENARIOS[s] for s in settings["scenarios"]]
    summary = summarize(doc["runs"], targets, scenarios, settings)
    md = report(doc["command"], settings, doc["machine"], summary, targets, scenarios, raw)
    output.write_text(md)
    log(md)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_from:
        report_from(Path(args.report_from).resolve(), Path(args.output))
        return 0
    targets = [t for t in TARGETS if t in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(TARGETS)
    if unknown or not targets:
        sys.exit(f"--only: unknown target(s) {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    scenarios = [SCENARIOS[s] for s in args.scenarios.split(",") if s in SCENARIOS]
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown or not scenarios:
        sys.exit(f"--scenarios: unknown {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    if "direct" not in targets and not args.serve:
        targets.insert(0, "direct")  # the baseline every "added" figure needs
    missing = []
    if not Path(args.nginx).exists() or not NGINX_MODULE.exists():
        missing.append("nginx + libnginx-mod-http-js")
    if not shutil.which(args.wrk):
        missing.append("wrk")
    if "litellm" in targets and not Path(args.litellm).exists():
        missing.append(f"LiteLLM ({args.litellm})")
    if missing:
        sys.exit(f"missing: {', '.join(missing)}: run `bash bench/setup.sh` first")
    if "tollhouse" in targets and not Path(args.tollhouse).exists():
        sys.exit(f"no Tollhouse at {args.tollhouse}: install the repo (README) or pass --only")
    if args.load_cpus:
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(0, {int(c) for c in args.load_cpus.split(",")})

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        benchmark(args, targets, scenarios)
    except KeyboardInterrupt:
        log("\ninterrupted: all started processes stopped")
        return 130
    except RuntimeError as exc:
        log(f"\nFAILED: {exc}")
        return 1
    except Exception:
        log(f"\nFAILED:\n{traceback.format_exc()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
