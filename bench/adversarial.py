#!/usr/bin/env python3
"""Hostile clients and faults against a real `tollhouse serve`: issue #13 (items 1-12) and the
items of #12 a client can hit (2, 4, 5, 6), each one case, bounded in time and count, loopback
only. Prints a table attack | what was done | outcome measured | target | pass/fail and writes
it to bench/results/adversarial.md (date, commit, command).

    .venv/bin/python bench/adversarial.py                 # ~5 min, every case
    .venv/bin/python bench/adversarial.py --quick         # ~3 min, smaller counts/stalls
    .venv/bin/python bench/adversarial.py --only slowloris,redis-stall
    .venv/bin/python bench/adversarial.py --tollhouse /tmp/x/bin/tollhouse   # compiled install

Every case starts its own processes, from the venv this script runs in (or `--tollhouse`):
`tollhouse serve` with gateway keys required (keys made with `tollhouse keys create`) and the
ledger on (SQLite in the case's directory, or PostgreSQL in a schema of its own), upstreams
that are the built-in simulator in process (faults, pacing) or bench/adversarial_upstream.py
(a careless provider that echoes its key and writes down what it was sent), a private
`redis-server` on a free port (the machine's shared Redis is never touched), and a TCP proxy
of its own in front of the shared PostgreSQL that it can stall. All of it is killed at the end
of the case, on error, Ctrl-C or SIGTERM. Logs and configs stay in bench/.work/adversarial-*/.

Where the issue asks, an ordinary client's latency is measured during the attack by
bench/adversarial_probe.py (its own process; one small call at a time on a fresh connection).
Thousands of attacking connections are asyncio raw sockets; the soft file limit is raised to
the hard one for this side, and a case opens what the OS allows and says so in the table.
Targets are the issue's figures; where it gives none, the target says "ours" and is the
plainest reading of the issue's sentence, never loosened to make a case pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROVIDER_KEY = "sk-ant-api03-ADVERSARIALprovidersecret0123456789abcdefXYZ"
KEY_SECRET = PROVIDER_KEY.removeprefix("sk-ant-api03-")  # the part that is not every key's
PROBE_TARGET_P99_MS = 100.0
FD_RESERVE = 300  # files this process keeps for itself (pipes, logs, clients)
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


# ---------------------------------------------------------------------------- results


@dataclass
class Row:
    attack: str
    done: str
    measured: str
    target: str
    passed: bool | None  # None: reported, no target to hold

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "**FAIL**", None: "info"}[self.passed]


# -------------------------------------------------------------------------- processes


class Processes:
    """Every process this run started; `stop_all` ends them (SIGCONT first, so a stopped
    Redis can die too), by their process group, whatever state the run is in."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    def start(
        self,
        argv: list[str],
        log: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        nofile: int | None = None,
        stdout: int | None = None,
    ) -> subprocess.Popen[bytes]:
        def limit() -> None:
            if nofile is not None:
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        handle = open(log, "ab")  # noqa: SIM115 - owned by the child from here on
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdout=stdout if stdout is not None else handle,
                stderr=handle,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=limit,
            )
        finally:
            handle.close()
        with self._lock:
            self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout` s; whether it had to be killed."""
        killed = False
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        with self._lock:
            if process in self._running:
                self._running.remove(process)
        return killed

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for process in running:
            self.stop(process, timeout=5.0)


PROCESSES = Processes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children's group leader, MB (VmRSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# ------------------------------------------------------------------------------- run


@dataclass
class Run:
    tollhouse: str
    quick: bool
    work: Path
    attack_files: int  # files this process may open for attacking connections
    notes: list[str] = field(default_factory=list)

    def case_dir(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    def connections(self, wanted: int) -> tuple[int, str]:
        """How many attacking connections a case may open, and a note when the OS allowed
        fewer than it wanted."""
        allowed = min(wanted, self.attack_files)
        if allowed < wanted:
            return allowed, f" (file limit: {allowed} of {wanted})"
        return allowed, ""


# --------------------------------------------------------------------------- gateway


def sim(fmt: str = "anthropic", **options: Any) -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": fmt, **options}}


def route(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}], **extra}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def gateway_config(
    directory: Path,
    providers: dict[str, Any] | None = None,
    models: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """Keys required, the ledger on (SQLite in `directory`), a fast `probe` route, and
    whatever the case adds."""
    base: dict[str, Any] = {
        "server": {"host": "127.0.0.1"},
        "keys": {"required": True, "sqlite_path": str(directory / "keys.db")},
        "ledger": {
            "backend": "sqlite",
            "sqlite_path": str(directory / "ledger.db"),
            "spill_path": str(directory / "ledger.spill"),
        },
        "logging": {"level": "warning"},
        "providers": {"probe-sim": sim(), **(providers or {})},
        "models": {"probe": route("probe-sim", "claude-haiku-4-5"), **(models or {})},
    }
    return merge(base, sections)


class Gateway:
    """One `tollhouse serve` process on a free loopback port."""

    def __init__(
        self,
        run: Run,
        directory: Path,
        config: dict[str, Any],
        *,
        name: str = "gateway",
        nofile: int | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.run = run
        self.directory = directory
        self.config_path = directory / f"{name}.yaml"
        self.config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / f"{name}.log"
        self.nofile = nofile
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        argv = [self.run.tollhouse, "serve", "--config", str(self.config_path)]
        self.process = PROCESSES.start(
            [*argv, "--port", str(self.port)],
            self.log,
            cwd=self.cwd or self.directory,
            env={"ADV_PROVIDER_KEY": PROVIDER_KEY, **(self.env or {})},
            nofile=self.nofile,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready(self, within: float = 30.0) -> bool:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return True
                await asyncio.sleep(0.1)
        return False

    async def start_ready(self) -> Gateway:
        self.start()
        if not await self.ready():
            raise RuntimeError(f"gateway did not become ready: {self.log_tail()}")
        return self

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM and wait (blocking: use `astop` when this loop serves the gateway, as
        the PostgreSQL proxy does); whether it had to be killed."""
        return self.process is not None and PROCESSES.stop(self.process, timeout)

    async def astop(self, grace: float = 15.0) -> tuple[float, bool]:
        """`stop` off the event loop; seconds it took and whether it had to be killed."""
        started = time.monotonic()
        killed = await asyncio.to_thread(self.stop, grace)
        return time.monotonic() - started, killed

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 3) -> str:
        tail = [line for line in self.log_text().splitlines() if line.strip()][-lines:]
        return " / ".join(tail)[-400:]

    def rss(self) -> float:
        return rss_mb(self.pid)


def create_key(run: Run, keys_db: Path, name: str, *flags: str, cwd: Path | None = None) -> str:
    """A gateway key made the way an operator makes one; its secret."""
    result = subprocess.run(
        [run.tollhouse, "keys", "create", "--sqlite", str(keys_db), "--name", name, *flags],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
        timeout=30,
    )
    return result.stdout.strip().splitlines()[-1]


async def plain_keys(keys_db: Path, prefix: str, count: int) -> list[str]:
    """`count` keys with no limits, made straight on the key store (as bench/limits.py
    does; `tollhouse keys create` takes most of a second each on a loaded machine)."""
    from tollhouse.ports.keys.record import KeySpec
    from tollhouse.ports.keys.sqlite import SQLiteKeyStore

    store = SQLiteKeyStore(keys_db)
    try:
        return [(await store.create(KeySpec(name=f"{prefix}-{i}")))[1] for i in range(count)]
    finally:
        await store.aclose()


def key_pieces(text: str, width: int = 8) -> int:
    """How many of the provider key's secret `width`-character runs `text` holds: a whole
    echo counts many, half a key some, a redacted one none."""
    runs = {KEY_SECRET[i : i + width] for i in range(len(KEY_SECRET) - width + 1)}
    return sum(1 for run in runs if run in text)


def ledger_rows(path: Path, where: str = "1=1", params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        db.row_factory = sqlite3.Row
        try:
            return list(db.execute(f"SELECT * FROM calls WHERE {where}", tuple(params)))
        except sqlite3.OperationalError:
            return []


# ------------------------------------------------------------------------------ probe


class Probe:
    """bench/adversarial_probe.py in its own process; `stop()` gives (ms, status) samples."""

    def __init__(self, gateway: Gateway, key: str, model: str = "probe") -> None:
        self.gateway = gateway
        self.key = key
        self.model = model
        self.out = gateway.directory / f"probe-{time.monotonic_ns()}.txt"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Probe:
        handle = open(self.out, "wb")  # noqa: SIM115
        try:
            self.process = PROCESSES.start(
                [
                    sys.executable,
                    str(BENCH / "adversarial_probe.py"),
                    self.gateway.url,
                    self.key,
                    self.model,
                ],
                self.gateway.directory / "probe.log",
                stdout=handle.fileno(),
            )
        finally:
            handle.close()
        return self

    def stop(self) -> list[tuple[float, int]]:
        return [(ms, status) for ms, status, _ in self.stop_timed()]

    def stop_timed(self) -> list[tuple[float, int, float]]:
        """(ms, status, unix time the probe ended) of every probe."""
        if self.process is not None:
            PROCESSES.stop(self.process, 5.0)
        samples = []
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                samples.append((float(parts[0]), int(parts[1]), float(parts[2])))
        return samples


def probe_summary(samples: list[tuple[float, int]]) -> tuple[str, bool]:
    """'probe p50/p99 ms, failures' and whether it holds p99 < 100 ms with no failure."""
    if not samples:
        return "probe: no sample", False
    latencies = [ms for ms, _ in samples]
    failed = sum(1 for _, status in samples if status != 200)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    text = f"probe p50 {p50:.0f} ms, p99 {p99:.0f} ms, {failed}/{len(samples)} not 200"
    return text, p99 < PROBE_TARGET_P99_MS and failed == 0


PROBE_TARGET = "probe p99 < 100 ms, every probe 200"


# ------------------------------------------------------------------------ HTTP helpers


def anthropic_body(model: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def openai_body(model: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


@dataclass
class Answer:
    status: int  # 0: no status line came
    headers: httpx.Headers
    body: bytes
    seconds: float
    cut: bool = False  # the body broke off (connection closed mid-answer)

    @property
    def request_id(self) -> str | None:
        value: str | None = self.headers.get("x-tollhouse-request-id")
        return value


async def call(
    client: httpx.AsyncClient,
    url: str,
    key: str,
    body: dict[str, Any] | bytes,
    *,
    fmt: str = "anthropic",
    headers: dict[str, str] | None = None,
    within: float = 30.0,
) -> Answer:
    """One call read to its end (a stream too); status 0 when the transport failed."""
    if fmt == "anthropic":
        path, auth = "/v1/messages", {"x-api-key": key, **ANTHROPIC_HEADERS}
    else:
        path = "/v1/chat/completions"
        auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.monotonic()
    try:
        async with client.stream(
            "POST",
            url + path,
            content=content,
            headers={**auth, **(headers or {})},
            timeout=within,
        ) as response:
            chunks: list[bytes] = []
            try:
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
            except httpx.HTTPError:
                data = b"".join(chunks)
                return Answer(
                    response.status_code, response.headers, data, time.monotonic() - started, True
                )
            data = b"".join(chunks)
            return Answer(response.status_code, response.headers, data, time.monotonic() - started)
    except httpx.HTTPError:
        return Answer(0, httpx.Headers(), b"", time.monotonic() - started)


def http_client(**kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64), **kw
    )


def counts(statuses: Iterable[int]) -> str:
    tally: dict[int, int] = {}
    for status in statuses:
        tally[status] = tally.get(status, 0) + 1
    return ", ".join(f"{n}×{s}" for s, n in sorted(tally.items())) or "none"


# ------------------------------------------------------------------ outside services


async def start_redis(run: Run, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = PROCESSES.start(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        directory / "redis.log",
    )
    for _ in range(100):
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return process, port
        await asyncio.sleep(0.1)
    raise RuntimeError("private redis-server did not start")


async def start_upstream(directory: Path) -> tuple[str, Path]:
    """bench/adversarial_upstream.py on a free port; its URL and its record file."""
    port = free_port()
    record = directory / "upstream-seen.jsonl"
    PROCESSES.start(
        [
            sys.executable,
            str(BENCH / "adversarial_upstream.py"),
            *("--port", str(port), "--record", str(record)),
        ],
        directory / "upstream.log",
    )
    for _ in range(100):
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"http://127.0.0.1:{port}", record
        await asyncio.sleep(0.05)
    raise RuntimeError("adversarial upstream did not start")


def upstream_seen(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def echo_providers(upstream: str) -> dict[str, Any]:
    return {
        "echo-anthropic": {
            "type": "anthropic",
            "base_url": upstream,
            "api_key": "env:ADV_PROVIDER_KEY",
        },
        "echo-openai": {
            "type": "openai",
            "base_url": upstream + "/v1",
            "api_key": "env:ADV_PROVIDER_KEY",
        },
    }


class StallingProxy:
    """A TCP proxy in this process in front of a server; `stall()` stops every byte in both
    directions (connections stay open, as with a frozen database), `resume()` lets them go."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()


# ------------------------------------------------------------------ raw connections


async def open_many(
    count: int, port: int, batch: int = 200
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Up to `count` TCP connections to the gateway, in batches (the listen backlog is
    finite); those that could not be made within 3 s are left out."""
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3.0)
        except (OSError, TimeoutError):
            return None

    for start in range(0, count, batch):
        results = await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
        opened += [pair for pair in results if pair is not None]
        await asyncio.sleep(0.02)
    return opened


async def watch_close(reader: asyncio.StreamReader, started: float) -> tuple[float, bytes]:
    """When the gateway ended the connection (seconds after `started`) and what it sent."""
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk[: max(0, 4096 - len(data))]
    except (ConnectionError, OSError):
        pass
    return time.monotonic() - started, data


def write_open(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write unless the gateway already ended the connection (asyncio logs every write to a
    lost connection)."""
    if not writer.transport.is_closing():
        with contextlib.suppress(Exception):
            writer.write(data)


def close_all(pairs: Iterable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in pairs:
        with contextlib.suppress(Exception):
            writer.transport.abort()


def status_of(data: bytes) -> int:
    parts = data.split(b"\r\n", 1)[0].split()
    try:
        return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") else 0
    except ValueError:
        return 0


# ============================================================================= cases


async def case_redis_stall(run: Run) -> list[Row]:
    """#13.1: calls in flight through a Redis stall must not leave their leases behind."""
    d = run.case_dir("redis-stall")
    redis, redis_port = await start_redis(run, d)
    workers, stall = 24, run.pick(20.0, 8.0)
    config = gateway_config(
        d,
        {"slow-sim": sim(ttft_ms=1000)},
        {"slow": route("slow-sim", "claude-haiku-4-5")},
        counters={"backend": "redis", "redis_url": f"redis://127.0.0.1:{redis_port}/0"},
    )
    key = create_key(run, d / "keys.db", "tenant", "--concurrency", str(workers))
    gateway = await Gateway(run, d, config).start_ready()
    stop = asyncio.Event()
    statuses: list[int] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            answer = await call(client, gateway.url, key, anthropic_body("slow"), within=30)
            statuses.append(answer.status)
            if answer.status != 200:
                await asyncio.sleep(0.05)

    async with http_client() as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(workers)]
        await asyncio.sleep(3.0)
        os.kill(redis.pid, signal.SIGSTOP)
        await asyncio.sleep(stall)
        os.kill(redis.pid, signal.SIGCONT)
        recovered = time.monotonic()
        stop.set()
        await asyncio.wait(tasks, timeout=8.0)
        await asyncio.sleep(max(0.0, recovered + 10.0 - time.monotonic()))
        # Every lease free again means `workers` calls at once are all admitted.
        check = await asyncio.gather(
            *(
                call(client, gateway.url, key, anthropic_body("slow"), within=30)
                for _ in range(workers)
            )
        )
    refused = sum(1 for a in check if a.status == 429)
    others = [a.status for a in check if a.status not in (200, 429)]
    gateway.stop()
    return [
        Row(
            "Redis stall (#13.1)",
            f"key with concurrency {workers}; {workers} clients in a loop of 1 s calls; private "
            f"Redis SIGSTOPped {stall:g} s, then SIGCONT; 10 s after recovery {workers} calls at "
            "once",
            f"{refused} of {workers} refused 429 (leaked leases)"
            + (f", others {counts(others)}" if others else "")
            + f"; during the run: {counts(statuses)}",
            "0 leaked leases within 10 s of recovery"
            + ("" if stall >= 20 else f" (stall {stall:g} s, --quick)"),
            refused == 0 and not others,
        )
    ]


async def case_breaker_deadlines(run: Run) -> list[Row]:
    """#13.2: one tenant's impatience must not open a breaker for the others."""
    d = run.case_dir("breaker-deadlines")
    seconds = run.pick(25.0, 12.0)
    config = gateway_config(
        d, {"shared-sim": sim(ttft_ms=200)}, {"shared": route("shared-sim", "claude-haiku-4-5")}
    )
    attacker = create_key(run, d / "keys.db", "attacker")
    victim = create_key(run, d / "keys.db", "victim")
    gateway = await Gateway(run, d, config).start_ready()
    stop = asyncio.Event()
    victim_statuses: list[int] = []
    attacker_statuses: list[int] = []

    async def victim_loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            answer = await call(client, gateway.url, victim, anthropic_body("shared"), within=30)
            victim_statuses.append(answer.status)
            await asyncio.sleep(0.5)  # an ordinary tenant, not a flood that hides the breaker

    def sdk_impatient() -> int:
        sdk = anthropic.Anthropic(
            base_url=gateway.url, api_key=attacker, timeout=0.05, max_retries=0
        )
        try:
            sdk.messages.create(
                model="shared", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
            return 200
        except anthropic.APIStatusError as error:
            return error.status_code
        except anthropic.APIConnectionError:
            return -1  # the SDK gave up first (its own timeout)
        finally:
            sdk.close()

    async def attacker_loop(client: httpx.AsyncClient) -> None:
        shared = anthropic_body("shared")
        while not stop.is_set():
            # One kind at a time, five at once (the breaker's consecutive-failure count):
            # deadlines said in a header, the SDK's own timeout, clients that hang up after
            # 50 ms without saying so, and requests the upstream refuses as the client's
            # fault (temperature 5). None of them is the upstream failing.
            deadline = {"x-tollhouse-timeout": "0.01"}
            for burst in (
                [call(client, gateway.url, attacker, shared, headers=deadline) for _ in range(5)],
                [call(client, gateway.url, attacker, shared, within=0.05) for _ in range(5)],
                [
                    call(client, gateway.url, attacker, anthropic_body("shared", temperature=5.0))
                    for _ in range(5)
                ],
            ):
                attacker_statuses.extend(a.status for a in await asyncio.gather(*burst))
            attacker_statuses.extend(
                await asyncio.gather(*(asyncio.to_thread(sdk_impatient) for _ in range(5)))
            )
            await asyncio.sleep(2.0)

    async with http_client() as client:
        tasks = [asyncio.create_task(victim_loop(client))]
        tasks.append(asyncio.create_task(attacker_loop(client)))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait(tasks, timeout=10)
    gateway.stop()
    overloaded = sum(1 for s in victim_statuses if s in (529, 503))
    return [
        Row(
            "Client deadlines vs breaker (#13.2)",
            f"{seconds:g} s: every 2 s the attacker key sends, five at once, calls with "
            "`x-tollhouse-timeout: 0.01`, calls that hang up after 50 ms, calls the upstream "
            "refuses (400), SDK calls with `timeout=0.05`; victim key: one ordinary caller on "
            "the same route (200 ms calls, one every 0.7 s)",
            f"victim: {overloaded} × 529/503 of {len(victim_statuses)} "
            f"({counts(victim_statuses)}); attacker (0: hung up, -1: the SDK gave up): "
            f"{counts(attacker_statuses)}",
            "0 cross-tenant 529s from client deadlines, disconnects or 4xx",
            overloaded == 0 and bool(victim_statuses),
        )
    ]


def same_role_messages(count: int) -> dict[str, Any]:
    return {
        "model": "claude",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": f"m{i}"} for i in range(count)],
    }


def default_bounds() -> tuple[int | None, int | None]:
    """The message count and schema nesting of the largest request the installed gateway's
    defaults accept (`limits.max_messages`, and `limits.max_json_depth` less the body's own
    levels); None where it sets no such bound."""
    from tollhouse.config.model import LimitsConfig

    defaults = LimitsConfig()
    depth = getattr(defaults, "max_json_depth", None)
    # The body's own levels above the schema (body, tools, tool, function) and two a level.
    return getattr(defaults, "max_messages", None), (depth - 6) // 2 if depth else None


def deep_schema(depth: int) -> bytes:
    """A tool whose parameter schema nests `depth` objects (written out by hand: the
    encoder would refuse a nesting this deep)."""
    schema = '{"type":"object","properties":{"x":' * depth + '{"type":"string"}' + "}}" * depth
    head = '{"model":"claude","max_tokens":16,"messages":[{"role":"user","content":"hi"}],'
    return (
        head + '"tools":[{"type":"function","function":{"name":"f","parameters":' + schema + "}}]}"
    ).encode()


async def case_maximal_request(run: Run) -> list[Row]:
    """#13.3: no request may freeze the process (translation, nesting, sheer size)."""
    d = run.case_dir("maximal-request")
    # The upstream is its own process: what it spends reading a huge request is not the
    # gateway's time (an in-process simulator's would be).
    upstream, _ = await start_upstream(d)
    config = gateway_config(
        d, echo_providers(upstream), {"claude": route("echo-anthropic", "claude-haiku-4-5")}
    )
    attacker = create_key(run, d / "keys.db", "attacker")
    probe_key = create_key(run, d / "keys.db", "probe")
    gateway = await Gateway(run, d, config).start_ready()
    window = run.pick(50.0, 25.0)
    most, depth = default_bounds()
    bodies: list[tuple[str, Callable[[], bytes]]] = []
    if most is not None:
        label = f"{most:,} same-role OpenAI messages → Anthropic (the most the defaults accept)"
        bodies.append((label, lambda: json.dumps(same_role_messages(most)).encode()))
    if depth is not None:
        label = f"a tool schema nested {depth} deep (the deepest the defaults accept)"
        bodies.append((label, lambda: deep_schema(depth)))
    bodies += [
        (
            "16,000 same-role OpenAI messages → Anthropic",
            lambda: json.dumps(same_role_messages(16_000)).encode(),
        ),
        ("nesting 10,000 deep in a tool schema", lambda: deep_schema(10_000)),
        (
            "30 MB of text in one message",
            lambda: json.dumps(openai_body("claude", "word " * 6_000_000)).encode(),
        ),
    ]
    if not run.quick:
        bodies.insert(
            len(bodies) - 2,
            (
                "100,000 same-role OpenAI messages → Anthropic",
                lambda: json.dumps(same_role_messages(100_000)).encode(),
            ),
        )
    sent: list[tuple[str, str, float, float]] = []  # label, outcome, unix start and end
    probe = Probe(gateway, probe_key).start()
    started = time.monotonic()
    try:
        await asyncio.sleep(1.0)
        async with http_client() as client:
            for label, build in bodies:
                left = window - (time.monotonic() - started)
                if left < 2:
                    sent.append((label, "not sent (window over)", 0.0, 0.0))
                    continue
                body = build()
                begun = time.time()
                answer = await call(client, gateway.url, attacker, body, fmt="openai", within=left)
                got = f"{answer.status}" if answer.status else "no answer"
                sent.append((label, f"{got} in {answer.seconds:.1f} s", begun, time.time()))
                await asyncio.sleep(0.5)
        await asyncio.sleep(0.5)
    finally:
        timed = probe.stop_timed()
        gateway.stop()
    # Only the probes that ended while a maximal request was in the gateway (or within
    # half a second of its answer) count: "during", not diluted by the quiet in between.
    outcomes, during = [], []
    for label, outcome, begun, ended in sent:
        these = [(ms, status) for ms, status, at in timed if begun <= at <= ended + 0.5]
        worst = f", worst probe {max(ms for ms, _ in these):.0f} ms" if these else ""
        outcomes.append(f"{label}: {outcome}{worst}")
        during += these
    text, held = probe_summary(during)
    return [
        Row(
            "Maximal request (#13.3)",
            "default limits; one after another, each on its own: " + "; ".join(outcomes),
            text + " (probes during the requests)",
            PROBE_TARGET,
            held,
        )
    ]


async def case_slow_bodies(run: Run) -> list[Row]:
    """#13.4: slow request bodies must not take the slots (or the memory) of everyone else."""
    d = run.case_dir("slow-bodies")
    # More bodies than the in-flight slots (2,048 by default; --quick lowers both), as the
    # issue's run did: 2,000 would leave a few slots for the probe and prove nothing.
    slots = run.pick(None, 400)
    wanted, hold = run.pick(2100, 500), run.pick(40.0, 15.0)
    config = gateway_config(d, **({"reliability": {"max_in_flight": slots}} if slots else {}))
    # Spread over enough keys that no per-key bound on body reads refuses them: the bodies
    # must not take slots at all, whoever sends them.
    attackers = await plain_keys(d / "keys.db", "attacker", wanted // 50 + 1)
    attacker = attackers[0]
    probe_key = create_key(run, d / "keys.db", "probe")
    gateway = await Gateway(run, d, config).start_ready()
    count, limited = run.connections(wanted)

    def head(key: str) -> bytes:
        return (
            "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\ncontent-type: "
            'application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"mod\r\n'
        ).encode()

    pairs = await open_many(count, gateway.port)
    started = time.monotonic()
    for i, (_, writer) in enumerate(pairs):
        writer.write(head(attackers[i % len(attackers)]))
    watchers = [asyncio.create_task(watch_close(reader, started)) for reader, _ in pairs]
    trickle_stop = asyncio.Event()

    async def trickle() -> None:
        # Half the bodies keep a byte coming every 5 s, the other half stall outright.
        while not trickle_stop.is_set():
            for _, writer in pairs[::2]:
                write_open(writer, b"1\r\n \r\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(trickle_stop.wait(), 5.0)

    trickler = asyncio.create_task(trickle())
    await asyncio.sleep(1.0)
    probe = Probe(gateway, probe_key).start()
    await asyncio.sleep(hold)
    samples = probe.stop()
    trickle_stop.set()
    await trickler
    done = [w.result() for w in watchers if w.done()]
    answered = counts(status_of(data) for _, data in done)
    timed_out = sum(1 for _, data in done if status_of(data) == 408)
    judge_408 = hold >= 35  # past the 30 s a body may take by default (--quick holds less)
    close_all(pairs)
    for w in watchers:
        w.cancel()
    # The memory half: 20 bodies of a declared 30 MB, 25 MB sent, then nothing.
    before = gateway.rss()
    big = await open_many(20, gateway.port)
    big_head = (
        "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"x-api-key: {attacker}\r\nanthropic-version: 2023-06-01\r\n"
        f"content-type: application/json\r\ncontent-length: {30 * 1024 * 1024}\r\n\r\n"
    ).encode()
    block = b'{"model":"probe","messages":[{"role":"user","content":"' + b"a" * (25 * 1024 * 1024)

    async def send_big(writer: asyncio.StreamWriter) -> None:
        writer.write(big_head + block)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.drain(), 20)

    await asyncio.gather(*(send_big(w) for _, w in big))
    await asyncio.sleep(3.0)
    grown = gateway.rss() - before
    close_all(big)
    gateway.stop()
    text, held = probe_summary(samples)
    return [
        Row(
            "Slow bodies (#13.4)",
            f"{len(pairs)} connections{limited} with {len(attackers)} attacker keys against "
            f"{slots or 2048} in-flight slots, chunked bodies that never end "
            f"(half trickle a byte every 5 s, half stall), held {hold:g} s",
            f"{text}; gateway answered the slow bodies: {answered} ({len(done)} of {len(pairs)} "
            "answered or closed)",
            PROBE_TARGET + ("; every slow body answered 408 within the hold" if judge_408 else ""),
            held and (timed_out == len(pairs) or not judge_408),
        ),
        Row(
            "Partial big bodies (#13.4)",
            f"{len(big)} bodies declaring 30 MB, 25 MB sent, then silence",
            f"gateway RSS +{grown:.0f} MB after 3 s",
            "bounded (no figure in the issue; was +615 MB)",
            None,
        ),
    ]


async def case_slowloris(run: Run) -> list[Row]:
    """#13.5: headers a byte at a time and idle connections, on a 1,024-file service."""
    d = run.case_dir("slowloris")
    config = gateway_config(d)
    probe_key = create_key(run, d / "keys.db", "probe")
    nofile = run.pick(1024, 512)
    gateway = await Gateway(run, d, config, nofile=nofile).start_ready()
    wanted, hold = run.pick(2000, 600), run.pick(40.0, 15.0)
    count, limited = run.connections(wanted + 200)
    pairs = await open_many(count, gateway.port)
    slow, idle = pairs[: max(0, len(pairs) - 200)], pairs[max(0, len(pairs) - 200) :]
    started = time.monotonic()
    watchers = [asyncio.create_task(watch_close(reader, started)) for reader, _ in pairs]
    line = b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: "
    stop = asyncio.Event()

    async def drip() -> None:
        for _, writer in slow:
            write_open(writer, line)
        while not stop.is_set():
            for _, writer in slow:
                write_open(writer, b"a")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    dripper = asyncio.create_task(drip())
    await asyncio.sleep(1.0)
    probe = Probe(gateway, probe_key).start()
    await asyncio.sleep(hold)
    samples = probe.stop()
    stop.set()
    await dripper
    closed_slow = [w.result()[0] for w in watchers[: len(slow)] if w.done()]
    closed_idle = [w.result()[0] for w in watchers[len(slow) :] if w.done()]
    close_all(pairs)
    for w in watchers:
        w.cancel()
    shed = "shedding" in gateway.log_text().lower() or "too many" in gateway.log_text().lower()
    gateway.stop()
    text, held = probe_summary(samples)
    rows = [
        Row(
            "Slowloris (#13.5)",
            f"gateway at a {nofile:,}-file limit; {len(slow)} connections{limited} sending "
            "headers a byte a "
            f"second + {len(idle)} idle ones, no key, held {hold:g} s",
            text,
            PROBE_TARGET,
            held,
        )
    ]
    if hold >= 35:
        within = sum(1 for t in closed_slow + closed_idle if t <= 35.0)
        rows.append(
            Row(
                "Header timeout (#13.5)",
                "the same connections, watched for the gateway closing them",
                f"{within} of {len(pairs)} closed within 35 s (slow: {len(closed_slow)}, idle: "
                f"{len(closed_idle)} closed by {hold:g} s); log names shedding: "
                f"{'yes' if shed else 'no'}",
                "every slow/idle connection closed by the header timeout (≤ 30 s) + 5 s",
                within == len(pairs),
            )
        )
    return rows


async def raw_exchange(port: int, payload: bytes, within: float = 10.0) -> bytes:
    """Send `payload` (stopping early if the gateway closes) and read what comes back."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
    except (OSError, TimeoutError):
        return b""
    data = b""
    try:
        async with asyncio.timeout(within):
            for start in range(0, len(payload), 1 << 16):
                writer.write(payload[start : start + (1 << 16)])
                await writer.drain()
            while chunk := await reader.read(65536):
                data += chunk
                if b"\r\n\r\n" in data and len(data) > 64 * 1024:
                    break
    except (TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
    return data


async def case_header_limits(run: Run) -> list[Row]:
    """#13.5: header size limits, and malformed requests answered in JSON."""
    d = run.case_dir("header-limits")
    config = gateway_config(d)
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    body = json.dumps(anthropic_body("probe")).encode()

    def request(pads: list[int]) -> bytes:
        padding = "".join(f"x-pad-{i}: {'p' * pad}\r\n" for i, pad in enumerate(pads))
        return (
            f"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n"
            f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n{padding}"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode() + body

    sizes = {
        "one of 100 KB": [100 * 1024],
        "one of 8 MB": [8 * 1024 * 1024],
        "1,000 of 100 B (100 KB in all)": [100] * 1000,
    }
    results = {
        label: status_of(await raw_exchange(gateway.port, request(pads)))
        for label, pads in sizes.items()
    }
    malformed = await raw_exchange(gateway.port, b"THIS IS NOT HTTP\r\n\r\n")
    gateway.stop()
    head, _, rest = malformed.partition(b"\r\n\r\n")
    json_reply = b"application/json" in head.lower()
    refused = all(400 <= s < 500 for s in results.values())
    shown = ", ".join(f"{label}: {s or 'closed, no answer'}" for label, s in results.items())
    return [
        Row(
            "Huge headers (#13.5)",
            "headers on an otherwise valid call: one of 100 KB, one of 8 MB, 1,000 small ones",
            shown,
            "refused with a 4xx (431), never served (64 KB of headers in all is the limit asked)",
            refused,
        ),
        Row(
            "Malformed request line (#13.5)",
            "`THIS IS NOT HTTP` as the request line",
            f"{status_of(malformed) or 'no answer'}, {'JSON' if json_reply else 'not JSON'}: "
            f"{rest[:60]!r}",
            "an error answered in JSON",
            json_reply and status_of(malformed) >= 400,
        ),
    ]


async def case_never_read(run: Run) -> list[Row]:
    """#13.6: clients that ask for a stream and never read it."""
    d = run.case_dir("never-read")
    idle = 5.0
    # The upstream is its own process (what it holds is not the gateway's memory) and
    # streams 16 MiB as fast as it is read, so only the gateway's buffering is measured.
    upstream, _ = await start_upstream(d)
    config = gateway_config(
        d,
        echo_providers(upstream),
        {"long": route("echo-anthropic", "firehose")},
        timeouts={"read_idle": idle},
    )
    key = create_key(run, d / "keys.db", "reader")
    gateway = await Gateway(run, d, config).start_ready()
    clients = 50
    body = json.dumps({**anthropic_body("long"), "max_tokens": 64_000, "stream": True}).encode()
    payload = (
        f"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n"
        f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    before = gateway.rss()
    socks = []
    for _ in range(clients):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", gateway.port))
        sock.sendall(payload)
        socks.append(sock)
    peak = before
    watch = idle + 12.0
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline:
        peak = max(peak, gateway.rss())
        await asyncio.sleep(0.5)

    def dropped(sock: socket.socket) -> bool:
        # Drain what is queued: a connection the gateway dropped ends (EOF or reset)
        # within a bounded amount; one it still feeds keeps coming.
        sock.settimeout(1.0)
        total, give_up = 0, time.monotonic() + 4.0
        try:
            while total < 16 * 1024 * 1024 and time.monotonic() < give_up:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return True
                total += len(chunk)
        except TimeoutError:
            return False
        except OSError:
            return True
        return False

    ended = sum(await asyncio.gather(*(asyncio.to_thread(dropped, s) for s in socks)))
    for sock in socks:
        sock.close()
    gateway.stop()
    grown = peak - before
    return [
        Row(
            "Never-read streams (#13.6)",
            f"{clients} clients ask for a 16 MiB stream (an upstream that sends as fast as it "
            "is read) and read nothing (4 KB receive "
            f"buffers); `timeouts.read_idle: {idle:g}`; watched {watch:g} s",
            f"gateway RSS peak +{grown:.0f} MB ({grown / clients:.1f} MB a client); {ended} of "
            f"{clients} dropped by the gateway",
            "all dropped after read_idle; the streams not held in gateway memory (ours: RSS "
            "growth under half a stream, 8 MiB, a client)",
            ended == clients and grown / clients < 8,
        )
    ]


async def stream_outcome(
    client: httpx.AsyncClient, url: str, key: str, fmt: str, model: str, stream: bool
) -> tuple[str, str | None]:
    """How a long call ended for its client: complete, format error, cut or bare 500."""
    if fmt == "anthropic":
        body: dict[str, Any] = anthropic_body(model)
    else:
        body = openai_body(model)
    body["max_tokens"] = 400  # more than the 300 tokens a stream paces over 30 s
    if stream:
        body["stream"] = True
    answer = await call(client, url, key, body, fmt=fmt, within=90)
    ctype = answer.headers.get("content-type", "")
    if answer.status == 0:
        return "no answer", None
    if stream and answer.status == 200:
        text = answer.body.decode(errors="replace")
        if "message_stop" in text or "[DONE]" in text:
            return "complete", answer.request_id
        if ("event: error" in text or '"error"' in text) and not answer.cut:
            return "stream error event", answer.request_id
        return "stream cut", answer.request_id
    if "json" in ctype:
        return (
            "complete" if answer.status == 200 else f"{answer.status} JSON error"
        ), answer.request_id
    return f"{answer.status} {ctype or 'no content-type'}", answer.request_id


async def case_sigterm(run: Run) -> list[Row]:
    """#13.7: SIGTERM with 30 s calls in flight: each ends properly and is recorded."""
    d = run.case_dir("sigterm")
    config = gateway_config(
        d,
        {
            "long-sim": sim(ttft_ms=30_000),
            "stream-sim": sim(tokens_per_second=10, reply_tokens=300),
            "stream-sim-openai": sim("openai", tokens_per_second=10, reply_tokens=300),
        },
        {
            "long": route("long-sim", "claude-haiku-4-5"),
            "long-stream": route("stream-sim", "claude-haiku-4-5"),
            "long-stream-openai": route("stream-sim-openai", "gpt-4o-mini"),
        },
        timeouts={"first_byte": 60, "read_idle": 60},
    )
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    plan = [("anthropic", "long", False)] * 4 + [("openai", "long", False)] * 3
    plan += [("anthropic", "long-stream", True)] * 3 + [("openai", "long-stream-openai", True)] * 3
    async with http_client() as client:
        tasks = [
            asyncio.create_task(stream_outcome(client, gateway.url, key, f, m, s))
            for f, m, s in plan
        ]
        await asyncio.sleep(2.0)
        signalled = time.monotonic()
        os.kill(gateway.pid, signal.SIGTERM)
        assert gateway.process is not None
        exited = await asyncio.to_thread(_wait_exit, gateway.process, 75.0)
        exit_s = time.monotonic() - signalled
        outcomes = [await t for t in tasks]
    gateway.stop()
    at_exit = ledger_rows(d / "ledger.db", "model_requested LIKE 'long%'")
    # What the spill replay at the next start adds (the old shape's only way there).
    again = await Gateway(run, d, config).start_ready()
    again.stop()
    after = ledger_rows(d / "ledger.db", "model_requested LIKE 'long%'")
    proper = sum(
        1 for text, _ in outcomes if text in ("complete", "stream error event") or "JSON" in text
    )
    cut_as_200 = sum(
        1 for r in after if r["stream"] and r["status"] == 200 and r["stop_reason"] is None
    )
    lost = len(plan) - len(at_exit)
    return [
        Row(
            "SIGTERM with 30 s calls (#13.7)",
            f"{len(plan)} calls of 30 s (7 whole, 6 streams), SIGTERM after 2 s",
            f"exit after {exit_s:.0f} s{'' if exited else ' (killed: no exit in 75 s)'}; clients: "
            f"{counts_text(t for t, _ in outcomes)}; ledger at exit: {len(at_exit)} of {len(plan)} "
            f"(after a restart's spill replay: {len(after)}); cut streams recorded as 200: "
            f"{cut_as_200}",
            "0 records lost (in the ledger at exit); each client gets its answer or an error in "
            "its format",
            lost == 0 and proper == len(plan) and cut_as_200 == 0,
        )
    ]


def counts_text(values: Iterable[str]) -> str:
    tally: dict[str, int] = {}
    for value in values:
        tally[value] = tally.get(value, 0) + 1
    return ", ".join(f"{n}× {v}" for v, n in sorted(tally.items()))


def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        process.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


async def config_accepted(run: Run, d: Path, config: dict[str, Any]) -> tuple[bool, str]:
    path = d / "check.yaml"
    path.write_text(json.dumps(config))
    result = await asyncio.to_thread(
        subprocess.run,
        [run.tollhouse, "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0, (result.stderr or result.stdout).strip().splitlines()[-1:][
        0
    ] if (result.stderr or result.stdout).strip() else ""


async def answered_loop(
    client: httpx.AsyncClient, url: str, key: str, stop: asyncio.Event, answered: list[str]
) -> None:
    """Fast calls one after another until `stop`; the request id of each answer that came
    whole before `stop` goes to `answered` (what the ledger then must hold)."""
    while not stop.is_set():
        answer = await call(client, url, key, anthropic_body("probe"), within=10)
        if answer.status == 200 and not answer.cut and answer.request_id and not stop.is_set():
            answered.append(answer.request_id)


async def sigkill_once(run: Run, durability: str) -> Row:
    d = run.case_dir(f"sigkill-{durability}")
    config = gateway_config(d, ledger={"durability": durability})
    accepted, message = await config_accepted(run, d, config)
    note = ""
    if not accepted:
        note = f"`ledger.durability` refused ({message[:80]}); ran with the default. "
        config = gateway_config(d)
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    answered: list[str] = []
    stop = asyncio.Event()
    seconds = run.pick(4.0, 3.0)
    async with http_client() as client:
        tasks = [
            asyncio.create_task(answered_loop(client, gateway.url, key, stop, answered))
            for _ in range(32)
        ]
        await asyncio.sleep(seconds)
        os.kill(gateway.pid, signal.SIGKILL)
        stop.set()
        await asyncio.wait(tasks, timeout=10)
    gateway.stop()
    again = await Gateway(run, d, config).start_ready()  # replays the spill
    again.stop()
    ids = {r["request_id"] for r in ledger_rows(d / "ledger.db")}
    lost = sum(1 for rid in answered if rid not in ids)
    synced = durability == "synced"
    return Row(
        f"SIGKILL, ledger {durability} (#13.8)",
        note + f"32 clients of fast calls for {seconds:g} s, SIGKILL, restart (spill replay)",
        f"{lost} of {len(answered)} answered calls missing from the ledger",
        "0 lost (synced)" if synced else "loss bounded by the batch window (batched: reported)",
        (lost == 0 and accepted) if synced else None,
    )


async def case_sigkill(run: Run) -> list[Row]:
    """#13.8: SIGKILL under load: with `ledger.durability: synced` no answered call is lost."""
    return [await sigkill_once(run, d) for d in run.pick(("synced", "batched"), ("synced",))]


async def case_stream_secrets(run: Run) -> list[Row]:
    """#13.9: an upstream error event inside a stream that echoes the provider key."""
    d = run.case_dir("stream-secrets")
    upstream, record = await start_upstream(d)
    config = gateway_config(
        d,
        echo_providers(upstream),
        {
            "echo-a": route("echo-anthropic", "echo-key"),
            "echo-o": route("echo-openai", "echo-key"),
            "split-a": route("echo-anthropic", "echo-key-split"),
            "split-o": route("echo-openai", "echo-key-split"),
        },
        reliability={"retry": {"max_attempts": 1}},
    )
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    found_streams, found_whole, calls_made = 0, 0, 0
    async with http_client() as client:
        for fmt in ("anthropic", "openai"):
            for model in ("echo-a", "echo-o", "split-a", "split-o"):
                for stream in (True, False):
                    body = anthropic_body(model) if fmt == "anthropic" else openai_body(model)
                    if stream:
                        body["stream"] = True
                    answer = await call(client, gateway.url, key, body, fmt=fmt, within=15)
                    hits = key_pieces(str(answer.headers) + answer.body.decode("latin-1"))
                    calls_made += 1
                    if stream:
                        found_streams += hits
                    else:
                        found_whole += hits
    gateway.stop()
    sent = sum(1 for r in upstream_seen(record) if PROVIDER_KEY in json.dumps(r["headers"]))
    return [
        Row(
            "Key echoed in a stream error (#13.9)",
            "upstream echoes the key it was sent in a mid-stream error event, in one write or "
            f"cut in two in the middle of the key (and in whole-answer errors); {calls_made} "
            "calls, both formats, same and cross format",
            f"pieces of the key found: {found_streams} in streams, {found_whole} in whole answers "
            f"(the upstream received it on {sent} calls)",
            "0 provider-key bytes in any stream (or answer)",
            found_streams == 0 and found_whole == 0 and sent > 0,
        )
    ]


async def case_duplicate_keys(run: Run) -> list[Row]:
    """#13.10: bodies with duplicate JSON keys are refused, never forwarded."""
    d = run.case_dir("duplicate-keys")
    upstream, record = await start_upstream(d)
    config = gateway_config(
        d,
        echo_providers(upstream),
        {
            "cheap": route("echo-anthropic", "cheap-up"),
            "expensive": route("echo-anthropic", "expensive-up"),
            "cheap-o": route("echo-openai", "cheap-up"),
        },
    )
    key = create_key(run, d / "keys.db", "scoped", "--models", "cheap", "--models", "cheap-o")
    gateway = await Gateway(run, d, config).start_ready()
    msgs = '"messages":[{"role":"user","content":"hi"}]'
    cases = [
        ("anthropic", f'{{"model":"expensive","model":"cheap","max_tokens":8,{msgs}}}'),
        ("anthropic", f'{{"model":"cheap","max_tokens":100000,"max_tokens":8,{msgs}}}'),
        (
            "anthropic",
            '{"model":"cheap","max_tokens":8,"messages":[{"role":"user","content":"a","content":"b"}]}',
        ),
        ("openai", f'{{"model":"expensive","model":"cheap-o",{msgs}}}'),
    ]
    statuses, formatted = [], 0
    async with http_client() as client:
        for fmt, raw in cases:
            answer = await call(client, gateway.url, key, raw.encode(), fmt=fmt, within=15)
            statuses.append(answer.status)
            with contextlib.suppress(ValueError):
                doc = json.loads(answer.body)
                formatted += int(
                    doc.get("type") == "error" if fmt == "anthropic" else "error" in doc
                )
    gateway.stop()
    forwarded = len(upstream_seen(record))
    return [
        Row(
            "Duplicate JSON keys (#13.10)",
            "key scoped to `cheap`: `model` twice (expensive, cheap), `max_tokens` twice, "
            "`content` twice "
            "in a message, and `model` twice in OpenAI format",
            f"statuses {statuses}; {formatted} of {len(cases)} errors in the client's format; "
            f"{forwarded} reached the upstream",
            "each refused 400 in the client's format, none forwarded",
            all(s == 400 for s in statuses) and formatted == len(cases) and forwarded == 0,
        )
    ]


async def case_client_headers(run: Run) -> list[Row]:
    """#13.11: `x-simulator-*` and `x-tollhouse-*` never reach a real upstream."""
    d = run.case_dir("client-headers")
    upstream, record = await start_upstream(d)
    config = gateway_config(
        d,
        echo_providers(upstream),
        {"fine-a": route("echo-anthropic", "fine"), "fine-o": route("echo-openai", "fine")},
    )
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    sneaky = {
        "x-simulator-fault": "500",
        "X-Simulator-TTFT-Ms": "1",
        "x-tollhouse-timeout": "30",
        "X-Tollhouse-Debug": "1",
    }
    async with http_client() as client:
        for fmt in ("anthropic", "openai"):
            for model in ("fine-a", "fine-o"):
                for stream in (False, True):
                    body = anthropic_body(model) if fmt == "anthropic" else openai_body(model)
                    if stream:
                        body["stream"] = True
                    await call(client, gateway.url, key, body, fmt=fmt, headers=sneaky, within=15)
    gateway.stop()
    seen = upstream_seen(record)
    leaked = sorted(
        {
            name
            for r in seen
            for name in r["headers"]
            if name.startswith(("x-simulator-", "x-tollhouse-"))
        }
    )
    return [
        Row(
            "Client-only headers (#13.11)",
            f"8 calls (both formats, streams too) with {', '.join(f'`{h}`' for h in sneaky)}",
            f"{len(seen)} upstream requests; client-only headers that reached it: "
            f"{', '.join(leaked) or 'none'}",
            "none reaches the provider",
            not leaked and len(seen) == 8,
        )
    ]


async def ledger_reported(client: httpx.AsyncClient, url: str) -> bool:
    """Whether /readyz says the ledger has a problem (or the gateway is not ready at all)."""
    try:
        ready = await client.get(url + "/readyz", timeout=2)
        doc = ready.json()
    except (httpx.HTTPError, ValueError):
        return False
    problems = doc.get("problems") or {}
    return ready.status_code != 200 or doc.get("status") != "ready" or "ledger" in problems


async def case_postgres_stall(run: Run) -> list[Row]:
    """#13.12: a stalled PostgreSQL ledger is noticed and reported quickly, and loses nothing."""
    import psycopg

    d = run.case_dir("postgres-stall")
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    schema = f"adv_{random.randrange(1 << 40):010x}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    proxy = await StallingProxy(("127.0.0.1", 5432)).start()
    stall = run.pick(20.0, 10.0)
    try:
        conninfo = (
            f"host=127.0.0.1 port={proxy.port} user=postgres dbname=test "
            f"options='-c search_path={schema}'"
        )
        config = gateway_config(
            d, ledger={"backend": "postgres", "postgres": "env:ADV_PG_CONNINFO"}
        )
        key = create_key(run, d / "keys.db", "client")
        gateway = await Gateway(run, d, config, env={"ADV_PG_CONNINFO": conninfo}).start_ready()
        answered: list[str] = []
        stop = asyncio.Event()
        noticed: float | None = None
        async with http_client() as client:
            tasks = [
                asyncio.create_task(answered_loop(client, gateway.url, key, stop, answered))
                for _ in range(8)
            ]
            await asyncio.sleep(3.0)
            proxy.stall()
            stalled = time.monotonic()
            while time.monotonic() - stalled < stall:
                if noticed is None and await ledger_reported(client, gateway.url):
                    noticed = time.monotonic() - stalled
                await asyncio.sleep(0.5)
            proxy.resume()
            await asyncio.sleep(8.0)
            stop.set()
            await asyncio.wait(tasks, timeout=10)
        stop_s, killed = await gateway.astop(grace=40)
        with psycopg.connect(admin, autocommit=True) as db:
            try:
                ids = {row[0] for row in db.execute(f"SELECT request_id FROM {schema}.calls")}
            except psycopg.Error:
                ids = set()
        at_stop = sum(1 for rid in answered if rid in ids)
        again = await Gateway(run, d, config, env={"ADV_PG_CONNINFO": conninfo}).start_ready()
        await again.astop(grace=40)
        with psycopg.connect(admin, autocommit=True) as db, contextlib.suppress(psycopg.Error):
            ids = {row[0] for row in db.execute(f"SELECT request_id FROM {schema}.calls")}
        lost = sum(1 for rid in answered if rid not in ids)
    finally:
        await proxy.aclose()
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    seen = f"{noticed:.1f} s" if noticed is not None else f"not within the {stall:g} s stall"
    return [
        Row(
            "Stalled PostgreSQL (#13.12)",
            "ledger on PostgreSQL through a proxy; 8 clients of fast calls; proxy stalls "
            f"{stall:g} s, resumes",
            f"/readyz reported it after {seen}; {len(answered)} answered; SIGTERM exit took "
            f"{stop_s:.0f} s{' (killed at 40 s)' if killed else ''}; in the ledger then: "
            f"{at_stop}, "
            f"after a restart's spill replay: {len(answered) - lost} ({lost} lost)",
            "reported within 10 s (ours; was 35-45 s), 0 records lost",
            noticed is not None and noticed <= 10.0 and lost == 0,
        )
    ]


async def case_two_gateways(run: Run) -> list[Row]:
    """#12.2: two gateways started in one folder with the same config both serve."""
    d = run.case_dir("two-gateways")
    config = gateway_config(d)
    config["keys"] = {"required": True}
    config.pop("ledger")
    key = create_key(run, Path("tollhouse.db"), "client", cwd=d)
    first = Gateway(run, d, config, name="first", cwd=d)
    second = Gateway(run, d, config, name="second", cwd=d)
    second.config_path = first.config_path
    await first.start_ready()
    second.start()
    second_ready = await second.ready(within=20)
    async with http_client() as client:
        a = await call(client, first.url, key, anthropic_body("probe"), within=10)
        b = (
            await call(client, second.url, key, anthropic_body("probe"), within=10)
            if second_ready
            else None
        )
    first.stop()
    second.stop()
    logs = first.log_text() + second.log_text()
    traceback = "Traceback" in logs
    why = "" if second_ready else f" (second: {second.log_tail(1)[:160]})"
    return [
        Row(
            "Two gateways, one folder (#12.2)",
            "`tollhouse serve` twice in one directory, same config (default relative ledger/spill "
            "paths)",
            f"first: {a.status}; second: {b.status if b else 'not serving'}{why}; traceback in "
            "logs: "
            f"{'yes' if traceback else 'no'}",
            "both serve, no traceback",
            a.status == 200 and b is not None and b.status == 200 and not traceback,
        )
    ]


async def case_outage_sdk(run: Run) -> list[Row]:
    """#12.4: when the breaker is open, how long until the official SDKs give up."""
    d = run.case_dir("outage-sdk")
    open_s = 3.0
    config = gateway_config(
        d,
        {"down-sim": sim(faults=["529"]), "down-sim-openai": sim("openai", faults=["503"])},
        {
            "down": route("down-sim", "claude-haiku-4-5"),
            "down-o": route("down-sim-openai", "gpt-4o-mini"),
        },
        reliability={
            "retry": {"max_attempts": 1},
            "breaker": {"consecutive_failures": 3, "open_seconds": open_s},
        },
    )
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    async with http_client() as client:
        for model, fmt in (("down", "anthropic"), ("down-o", "openai")):
            for _ in range(4):
                body = anthropic_body(model) if fmt == "anthropic" else openai_body(model)
                await call(client, gateway.url, key, body, fmt=fmt, within=10)
        raw = await call(client, gateway.url, key, anthropic_body("down"), within=10)
    retry_after, should_retry = raw.headers.get("retry-after"), raw.headers.get("x-should-retry")
    shown = f"`{raw.status}` retry-after {retry_after!r}, x-should-retry {should_retry!r}"

    def timed(fn: Callable[[], object]) -> float:
        started = time.monotonic()
        with contextlib.suppress(Exception):
            fn()
        return time.monotonic() - started

    claude = anthropic.Anthropic(base_url=gateway.url, api_key=key, timeout=60)
    gpt = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, timeout=60)
    a_s, o_s = await asyncio.gather(
        asyncio.to_thread(
            timed,
            lambda: claude.messages.create(
                model="down", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            ),
        ),
        asyncio.to_thread(
            timed,
            lambda: gpt.chat.completions.create(
                model="down-o", messages=[{"role": "user", "content": "x"}]
            ),
        ),
    )
    claude.close()
    gpt.close()
    gateway.stop()
    bound = 2 * open_s + 3.0
    return [
        Row(
            "Outage error wall time (#12.4)",
            f"route's only upstream always 529/503, breaker opens after 3 failures for {open_s:g} "
            "s; "
            "then one call through each official SDK (default retries)",
            f"reply {shown}; SDK gave up after: anthropic {a_s:.1f} s, openai {o_s:.1f} s",
            f"≤ {bound:g} s: the SDKs wait no longer than the breaker's real open time (was 2 × "
            "10 s)",
            a_s <= bound and o_s <= bound,
        )
    ]


async def case_metrics_cardinality(run: Run) -> list[Row]:
    """#12.5: random model names must not grow /metrics."""
    d = run.case_dir("metrics-cardinality")
    config = gateway_config(d)
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    names = run.pick(200, 50)

    def random_model() -> str:
        return "m-" + "".join(random.choices(string.ascii_lowercase, k=12))

    async with http_client() as client:

        async def series() -> int:
            text = (await client.get(gateway.url + "/metrics")).text
            return sum(1 for line in text.splitlines() if line and not line.startswith("#"))

        await call(client, gateway.url, key, anthropic_body("probe"))
        # One unknown name in each format first: the label values they share appear once.
        await call(client, gateway.url, key, anthropic_body(random_model()))
        await call(client, gateway.url, key, openai_body(random_model()), fmt="openai")
        first = await series()
        for _ in range(names):
            await call(client, gateway.url, key, anthropic_body(random_model()))
            await call(client, gateway.url, key, openai_body(random_model()), fmt="openai")
        after = await series()
    gateway.stop()
    return [
        Row(
            "Metrics cardinality (#12.5)",
            f"{2 * names} calls with random unknown model names (both formats)",
            f"/metrics series {first} after one unknown name in each format, {after} after all",
            "no growth (unknown names share one label value)",
            after == first,
        )
    ]


async def case_broken_streams(run: Run) -> list[Row]:
    """#12.6: a stream that ends in an error is recorded as what the client saw."""
    d = run.case_dir("broken-streams")
    config = gateway_config(
        d,
        {
            "err-a": sim(faults=["mid-stream-error"]),
            "rst-a": sim(faults=["mid-stream-reset"]),
            "err-o": sim("openai", faults=["mid-stream-error"]),
            "rst-o": sim("openai", faults=["mid-stream-reset"]),
        },
        {
            "brk-err-a": route("err-a", "claude-haiku-4-5"),
            "brk-rst-a": route("rst-a", "claude-haiku-4-5"),
            "brk-err-o": route("err-o", "gpt-4o-mini"),
            "brk-rst-o": route("rst-o", "gpt-4o-mini"),
        },
        reliability={"retry": {"max_attempts": 1}},
    )
    key = create_key(run, d / "keys.db", "client")
    gateway = await Gateway(run, d, config).start_ready()
    async with http_client() as client:
        for model in ("brk-err-a", "brk-rst-a", "brk-err-o", "brk-rst-o"):
            for fmt in ("anthropic", "openai"):
                body = anthropic_body(model) if fmt == "anthropic" else openai_body(model)
                body["stream"] = True
                await call(client, gateway.url, key, body, fmt=fmt, within=15)
        metrics = (await client.get(gateway.url + "/metrics")).text
    gateway.stop()
    rows = ledger_rows(d / "ledger.db", "model_requested LIKE 'brk-%'")
    as_200 = sum(1 for r in rows if r["status"] == 200)
    no_error = sum(1 for r in rows if not r["error_type"])
    metric_200 = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("tollhouse_calls") and 'model="brk-' in line and 'status="200"' in line
    )
    return [
        Row(
            "Broken streams recorded (#12.6)",
            "8 streams that end in an upstream error event or a reset (both formats, same and "
            "cross)",
            f"ledger: {len(rows)} records, {as_200} with status 200, {no_error} without error "
            "type; "
            f"/metrics counts {metric_200:.0f} of them as 200",
            "none recorded or counted as 200; each has an error type",
            len(rows) == 8 and as_200 == 0 and no_error == 0 and metric_200 == 0,
        )
    ]


CASES: dict[str, tuple[Callable[[Run], Awaitable[list[Row]]], float]] = {
    "redis-stall": (case_redis_stall, 75),
    "breaker-deadlines": (case_breaker_deadlines, 60),
    "maximal-request": (case_maximal_request, 90),
    "slow-bodies": (case_slow_bodies, 90),
    "slowloris": (case_slowloris, 80),
    "header-limits": (case_header_limits, 60),
    "never-read": (case_never_read, 60),
    "sigterm": (case_sigterm, 120),
    "sigkill": (case_sigkill, 60),
    "stream-secrets": (case_stream_secrets, 40),
    "duplicate-keys": (case_duplicate_keys, 40),
    "client-headers": (case_client_headers, 40),
    "postgres-stall": (case_postgres_stall, 120),
    "two-gateways": (case_two_gateways, 45),
    "outage-sdk": (case_outage_sdk, 60),
    "metrics-cardinality": (case_metrics_cardinality, 60),
    "broken-streams": (case_broken_streams, 40),
}


# ============================================================================ report


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[Row]) -> str:
    lines = [
        "| attack | what was done | outcome measured | target | result |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {cell(r.attack)} | {cell(r.done)} | {cell(r.measured)} | {cell(r.target)} | "
            f"{r.verdict} |"
        )
    return "\n".join(lines)


def commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (
        " (with uncommitted changes)"
        if git("status", "--porcelain", "--untracked-files=no")
        else ""
    )


def report(rows: list[Row], run: Run, argv: list[str], seconds: float) -> str:
    passed = sum(1 for r in rows if r.passed is True)
    failed = sum(1 for r in rows if r.passed is False)
    load = os.getloadavg()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    header = [
        "# Hostile clients and faults: bench/adversarial.py",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; commit {commit()}",
        f"- command: `{' '.join(argv)}`"
        + (" (quick: smaller counts and stalls)" if run.quick else ""),
        f"- machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}; load average at the end {load[0]:.1f} / {load[1]:.1f}; "
        f"attacker file limit {soft} (hard {hard}); tollhouse `{run.tollhouse}`",
        f"- {passed} passed, {failed} failed, {len(rows) - passed - failed} reported only; "
        f"{seconds:.0f} s in all",
    ]
    notes = [f"- note: {n}" for n in run.notes]
    return "\n".join(header + notes + ["", table(rows), ""])


# ============================================================================== main


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


async def run_cases(run: Run, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        case, budget = CASES[name]
        started = time.monotonic()
        print(f"[{datetime.now(UTC):%H:%M:%S}] {name} ...", file=sys.stderr, flush=True)
        try:
            got = await asyncio.wait_for(case(run), budget)
        except TimeoutError:
            got = [
                Row(name, "—", f"case did not finish within its {budget:g} s budget", "—", False)
            ]
        except Exception as error:  # a broken case is a row, not the end of the run
            got = [
                Row(name, "—", f"case failed: {type(error).__name__}: {error}"[:400], "—", False)
            ]
        finally:
            PROCESSES.stop_all()
        for row in got:
            print(f"    {row.verdict}: {row.attack}: {row.measured}", file=sys.stderr, flush=True)
        print(f"    ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        rows += got
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case names: " + ", ".join(CASES))
    parser.add_argument("--quick", action="store_true", help="smaller counts and stalls (~3 min)")
    parser.add_argument("--tollhouse", default=str(Path(sys.executable).parent / "tollhouse"))
    parser.add_argument("--output", default=str(BENCH / "results" / "adversarial.md"))
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",")] if args.only else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; expected one of {', '.join(CASES)}")
    if not shutil.which(args.tollhouse) and not Path(args.tollhouse).exists():
        parser.error(f"no tollhouse executable at {args.tollhouse}")
    soft = raise_file_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = Run(
        tollhouse=args.tollhouse,
        quick=args.quick,
        work=BENCH / ".work" / f"adversarial-{stamp}",
        attack_files=max(0, soft - FD_RESERVE),
    )
    run.work.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, _frame: object) -> None:
        PROCESSES.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        rows = asyncio.run(run_cases(run, names))
    finally:
        PROCESSES.stop_all()
    argv = ["python", "bench/adversarial.py", *sys.argv[1:]]
    text = report(rows, run, argv, time.monotonic() - started)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    print(f"written to {output}; logs in {run.work}", file=sys.stderr)
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
