"""Run an ASGI application on a real socket: in the foreground for the CLI, or on a thread
with its own event loop for tests and embedding (real HTTP over loopback, no mocks).

uvicorn with httptools and uvloop was chosen by measurement (see bench/); the application
itself is plain ASGI, so any ASGI server can host it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from tollhouse.server.http_protocol import ConnectionLimits, guarded_protocol

# Seconds uvicorn waits, past the app's own drain time, for the calls the app ended to send
# their errors and finish, before it cancels what is left.
_ENDING_GRACE = 5.0


class _Server(uvicorn.Server):
    """uvicorn's server, telling an app that drains (GatewayApp: `begin_drain`) when a
    shutdown begins, so the app ends its long calls itself (server/drain.py) before
    uvicorn's graceful timeout would cancel them into bare 500s."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_drain = getattr(self.config.app, "begin_drain", None)
        if begin_drain is not None:
            begin_drain()
        await super().shutdown(sockets=sockets)


def _config(app: Any, host: str, port: int, log_level: str, access_log: bool) -> uvicorn.Config:
    # An app that knows its bounds says so (GatewayApp, from its config); others get the
    # defaults.
    limits = getattr(app, "connection_limits", None) or ConnectionLimits()
    drain_seconds = getattr(app, "drain_seconds", None)
    graceful = 10 if drain_seconds is None else math.ceil(drain_seconds + _ENDING_GRACE)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if _has_uvloop() else "asyncio",
        http=guarded_protocol(limits),
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        proxy_headers=False,
        date_header=False,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=graceful,
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - platforms without uvloop
        return False
    return True


def _new_event_loop() -> asyncio.AbstractEventLoop:
    if _has_uvloop():
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()  # pragma: no cover - platforms without uvloop


def serve_forever(
    app: Any,
    host: str,
    port: int,
    *,
    log_level: str = "info",
    access_log: bool = False,
    sock: socket.socket | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM drain in-flight requests, then stop), on
    `sock` when given (see `listen`), else on a socket bound to host:port."""
    server = _Server(_config(app, host, port, log_level, access_log))
    server.run(sockets=None if sock is None else [sock])


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port, bound as uvicorn binds (SO_REUSEADDR), and
    inheritable, so worker processes can share it. Raises OSError (address in use, ...)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BackgroundServer:
    """An ASGI app served on a loopback port from a daemon thread.

    >>> with BackgroundServer(app) as server:
    ...     httpx.get(server.url + "/healthz")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = _Server(_config(app, self.host, self.port, "warning", False))
        self._thread = threading.Thread(target=self._run, name=f"asgi:{self.port}", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        # The same event loop as `serve_forever`, so tests exercise what production runs.
        self.loop = _new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve())
        finally:
            # A loop left open keeps its selector, wake-up pipe and eventfd: six file
            # descriptors per server, which a long test run exhausts (select() fails past
            # 1024).
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def start(self) -> BackgroundServer:
        self._thread.start()
        for _ in range(1000):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} failed to start")
            threading.Event().wait(0.01)
        raise RuntimeError(f"server on port {self.port} did not start within 10 s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[BackgroundServer]:
    with BackgroundServer(app) as server:
        yield server
