"""A redis-server of a test's own, for what the shared server can't be used for: stopping it,
or flushing its scripts."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from tests.support import server_unreachable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of the test's own on a free port, to stop and start at will; with
    `password`, clients must AUTH (the URL carries it)."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        credentials = f":{password}@" if password else ""
        self.url = f"redis://{credentials}127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                *(("--requirepass", self.password) if self.password else ()),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(
                    port=self.port, password=self.password, socket_connect_timeout=0.2
                ).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def pause(self) -> None:
        """Stall the server (SIGSTOP): connections stay open, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@contextmanager
def private_redis_server(password: str | None = None) -> Iterator[PrivateRedis]:
    """A `PrivateRedis` started for the block and stopped after it (a fixture's body)."""
    if shutil.which("redis-server") is None:
        server_unreachable("redis-server is not installed")
    server = PrivateRedis(password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()
