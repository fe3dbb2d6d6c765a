"""How long gateways on one config store take to serve a newly stored version.

Starts PROCESSES `tollhouse serve -c` processes on one store (a SQLite file, or PostgreSQL
with `--postgres CONNINFO`) with `config_store.poll_seconds` as given, stores VERSIONS new
versions one after the other (each through the store, as `tollhouse config apply` does),
and times each from the moment its write returned until every process's /readyz names it.
Prints the median, p90 and maximum, and the bound it is held to (the poll interval plus
the time to build and swap a snapshot). Each version is stored at a random point of the
poll cycle. With `--postgres`, CONNINFO's search_path must name an existing schema. Not
run by CI.

    .venv/bin/python bench/config_convergence.py [--processes 2] [--versions 20]
        [--poll-seconds 2.0] [--postgres CONNINFO]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore
from tollhouse.server.runner import free_port


def config(directory: Path, poll_seconds: float, postgres: bool, total: float) -> dict[str, Any]:
    store: dict[str, Any] = {"poll_seconds": poll_seconds}
    if postgres:
        store |= {"backend": "postgres", "postgres": "env:BENCH_CONFIG_PG"}
    return {
        "providers": {"sim": {"type": "simulator"}},
        "models": {"m": {"deployments": [{"provider": "sim", "model": "claude-haiku-4-5"}]}},
        "timeouts": {"total": total},
        "ledger": {"backend": "off"},
        "keys": {"sqlite_path": str(directory / "store.db")},
        "config_store": store,
    }


def served(port: int) -> int | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
        version: int | None = json.load(answer)["config_version"]
        return version


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gateway on {port} exited {process.returncode}")
        try:
            if served(port) is not None:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"gateway on {port} not ready in 60 s")


def new_store(args: argparse.Namespace, directory: Path) -> ConfigStore:
    if args.postgres:
        return PostgresConfigStore(args.postgres)
    return SQLiteConfigStore(directory / "store.db")


def add_version(store: ConfigStore, document: dict[str, Any]) -> int:
    async def main() -> int:
        try:
            version, _ = await store.add(document, source="cli", note="bench")
            return version.id
        finally:
            await store.aclose()

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--postgres", metavar="CONNINFO")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tollhouse-bench-config-") as name:
        directory = Path(name)
        path = directory / "gateway.yaml"
        path.write_text(json.dumps(config(directory, args.poll_seconds, bool(args.postgres), 600)))
        env = {**os.environ, "BENCH_CONFIG_PG": args.postgres or ""}
        ports = [free_port() for _ in range(args.processes)]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tollhouse", "serve", "-c", str(path), "-p", str(port)],
                cwd=directory,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            for port, process in zip(ports, processes, strict=True):
                wait_ready(port, process)
            times = []
            for n in range(args.versions):
                # Stored at a random point of the gateways' poll cycle, not just after a poll.
                time.sleep(random.uniform(0, args.poll_seconds))
                document = config(directory, args.poll_seconds, bool(args.postgres), 601 + n)
                version = add_version(new_store(args, directory), document)
                stored = time.monotonic()
                while any(served(port) != version for port in ports):
                    time.sleep(0.01)
                times.append(time.monotonic() - stored)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{args.processes} gateways on {backend}, poll_seconds {args.poll_seconds}, "
        f"{len(times)} versions: all serving the new version after median "
        f"{statistics.median(times):.3f} s, p90 {p90:.3f} s, max {times[-1]:.3f} s"
    )


if __name__ == "__main__":
    main()
