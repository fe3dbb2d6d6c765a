#!/usr/bin/env python3
"""Clients that ask for a stream and never read it, against a real `tollhouse serve` whose
upstream is an HTTP server streaming fast (4 KB events every millisecond per call): the
gateway's RSS growth, and how many clients it dropped after `timeouts.read_idle`.

    .venv/bin/python bench/never_read.py [--tollhouse PATH] [--clients 50] [--watch 17]

bench/adversarial.py's never-read case uses the in-process simulator, which builds each
400k-token answer whole before its first byte (its memory and CPU, not the relay's); this
one isolates what the gateway itself holds for a client that reads nothing.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server.stream_upstream import SlowStreamUpstream  # noqa: E402

from tollhouse.server.runner import BackgroundServer, free_port  # noqa: E402


def rss_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the gateway did not start")


def never_reading_client(port: int, body: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"x-api-key: k\r\nanthropic-version: 2023-06-01\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    return sock


def was_dropped(sock: socket.socket) -> bool:
    """Read what is buffered: True if the gateway closed or reset the connection."""
    sock.settimeout(0.2)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tollhouse", default=str(Path(sys.executable).parent / "tollhouse"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--watch", type=float, default=17.0, help="seconds")
    parser.add_argument("--read-idle", type=float, default=5.0)
    args = parser.parse_args()
    upstream_app = SlowStreamUpstream(events=100_000, interval=0.001, text="x" * 4000)
    with tempfile.TemporaryDirectory() as folder, BackgroundServer(upstream_app) as upstream:
        port = free_port()
        config = {
            "server": {"port": port},
            "providers": {"fast": {"type": "anthropic", "base_url": upstream.url}},
            "models": {"fast": {"deployments": [{"provider": "fast", "model": "fast"}]}},
            "timeouts": {"read_idle": args.read_idle},
            "ledger": {"backend": "off"},
            "keys": {"sqlite_path": f"{folder}/keys.db"},
        }
        Path(folder, "config.yaml").write_text(json.dumps(config))  # JSON is YAML
        gateway = subprocess.Popen(
            [args.tollhouse, "serve", "--config", f"{folder}/config.yaml"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(port)
            base = rss_mb(gateway.pid)
            body = json.dumps(
                {
                    "model": "fast",
                    "max_tokens": 5,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            ).encode()
            clients = [never_reading_client(port, body) for _ in range(args.clients)]
            peak = 0
            start = time.monotonic()
            while time.monotonic() - start < args.watch:
                peak = max(peak, rss_mb(gateway.pid) - base)
                time.sleep(0.25)
            dropped = sum(was_dropped(sock) for sock in clients)
            for sock in clients:
                sock.close()
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    print(
        f"{args.tollhouse}: {args.clients} clients reading nothing, read_idle "
        f"{args.read_idle:g} s, watched {args.watch:g} s: gateway RSS peak +{peak} MB, "
        f"{dropped} of {args.clients} dropped"
    )


if __name__ == "__main__":
    main()
