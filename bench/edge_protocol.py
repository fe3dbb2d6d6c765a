#!/usr/bin/env python3
"""CPU per request of the HTTP edge alone: uvicorn's stock `HttpToolsProtocol` against the
gateway's `GuardedHttpProtocol` (server/http_protocol.py: read deadlines, head limit,
connection limit, write deadline), each serving an ASGI app that reads the body and answers
at once, so nothing but the protocol differs.

    .venv/bin/python bench/edge_protocol.py [--seconds 5] [--repeats 5] [--connections 32]

Each run starts a server process (uvloop, as `tollhouse serve`), loads it with wrk (the
bench's Anthropic scenario: same body and headers, keep-alive), and divides the server's CPU
time over the run by the requests served. Runs alternate between the two protocols, so
noise on a shared machine lands on both; prints each run and the medians' ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

SERVER = r"""
import sys, uvicorn
from tollhouse.server.http_protocol import ConnectionLimits, guarded_protocol

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})

http = guarded_protocol(ConnectionLimits()) if sys.argv[2] == "guarded" else "httptools"
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http=http,
            log_level="warning", access_log=False, lifespan="off")
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(kind: str, port: int, seconds: int, connections: int, wrk: str) -> float:
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), kind])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (
                subprocess.run(
                    ["curl", "-s", f"http://127.0.0.1:{port}/"], capture_output=True
                ).returncode
                == 0
            ):
                break
            time.sleep(0.1)
        before = cpu_seconds(server.pid)
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                str(BENCH / "wrk" / "anthropic.lua"),
                f"http://127.0.0.1:{port}/v1/messages",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=BENCH / "wrk",
        ).stdout
        used = cpu_seconds(server.pid) - before
        line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
        result = json.loads(line.removeprefix("WRK_JSON "))
        return used / result["requests"] * 1e6
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    wrk = shutil.which("wrk") or "wrk"
    runs: dict[str, list[float]] = {"httptools": [], "guarded": []}
    for i in range(args.repeats):
        order = ("httptools", "guarded") if i % 2 == 0 else ("guarded", "httptools")
        for kind in order:
            us = one_run(kind, args.port, args.seconds, args.connections, wrk)
            runs[kind].append(us)
            print(f"run {i + 1} {kind}: {us:.1f} µs CPU per request", flush=True)
    stock, guarded = statistics.median(runs["httptools"]), statistics.median(runs["guarded"])
    ratio = guarded / stock
    print(f"median µs CPU/request: stock {stock:.1f}, guarded {guarded:.1f}, ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
