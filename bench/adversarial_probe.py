#!/usr/bin/env python3
"""The probe of bench/adversarial.py: what an ordinary client sees while an attack runs.

    python bench/adversarial_probe.py URL KEY MODEL [--interval 0.05] [--timeout 5]

One small Anthropic `POST /v1/messages` at a time, each on a fresh TCP connection (a new
client arriving, not a connection opened before the attack), paced every `--interval`
seconds; one line per call on stdout, `<milliseconds> <status> <unix time it ended>`
(status 0: no answer within `--timeout`, counted at the timeout), flushed at once, until
killed. It runs in its own process so that the attack's own event loop never delays it.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from urllib.parse import urlsplit


def request_bytes(host: str, key: str, model: str) -> bytes:
    body = json.dumps(
        {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "probe"}]}
    ).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nx-api-key: {key}\r\n"
        "anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def one_call(host: str, port: int, payload: bytes, timeout: float) -> int:
    """The status of one call, read to its end; 0 when no whole answer came in time."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(payload)
            data = b""
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return 0
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        status_line = data.split(b"\r\n", 1)[0].split()
        return int(status_line[1]) if len(status_line) > 1 else 0
    except (OSError, ValueError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("model")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    where = urlsplit(args.url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    payload = request_bytes(host, args.key, args.model)
    while True:
        started = time.monotonic()
        status = one_call(host, port, payload, args.timeout)
        elapsed = time.monotonic() - started
        spent = elapsed if status else max(elapsed, args.timeout)
        sys.stdout.write(f"{spent * 1000:.2f} {status} {time.time():.3f}\n")
        sys.stdout.flush()
        time.sleep(max(0.0, args.interval - elapsed))


if __name__ == "__main__":
    main()
