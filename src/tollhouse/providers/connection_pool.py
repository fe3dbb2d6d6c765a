"""Keep-alive connections to one upstream origin, bounded in number when asked.

Idle connections are reused newest first (the likeliest to still be open) and dropped after
`keepalive` seconds. With no `max_connections` (the default) every call that finds no idle
connection opens one: a long stream holds its connection for its whole length, so a cap
would make the calls after it wait for streams to end. When a cap is set and reached,
callers queue for the next release instead of opening more, and that wait is never silent:
it is counted (`waits`, `wait_seconds`: the metrics, providers/pool_metrics.py), returned
by `acquire` for the call's record, and logged (rate-limited). A connection is made
directly or through a `CONNECT` tunnel (`proxy`), over TLS when the pool has an SSL
context; the connect timeout bounds all of it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque

from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.providers.base import UpstreamConnectionError, UpstreamTimeoutError
from tollhouse.providers.connect_tunnel import open_tunnel
from tollhouse.providers.http1_connection import Http1Connection
from tollhouse.providers.proxy_selection import Proxy

log = logging.getLogger("tollhouse.upstream")
_wait_log = RateLimitedLog(log)


class ConnectionPool:
    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int | None,
        connect_timeout: float,
        keepalive: float = 60.0,
        proxy: Proxy | None = None,
        name: str = "",
    ) -> None:
        self.name = name or f"{host}:{port}"  # the provider, in the log line about waits
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._proxy = proxy
        self._certificate_logged = float("-inf")
        self._idle: list[tuple[Http1Connection, float]] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.waits = 0  # acquisitions that had to wait for a slot
        self.wait_seconds = 0.0  # their waiting, summed

    @property
    def max_connections(self) -> int | None:
        return self._max

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> tuple[Http1Connection, float]:
        """A connection, and the seconds spent waiting for a free slot (0.0: none)."""
        waited_since: float | None = None
        while True:
            now = time.monotonic()
            while self._idle:
                conn, since = self._idle.pop()
                if not conn.closed and now - since < self._keepalive:
                    return conn, self._waited(waited_since, now)
                self._discard(conn)
            if self._max is None or self._open < self._max:
                self._open += 1
                try:
                    conn = await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
                return conn, self._waited(waited_since, now)
            if waited_since is None:
                waited_since = now
                self._log_wait()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _waited(self, since: float | None, now: float) -> float:
        if since is None:
            return 0.0
        waited = now - since
        self.waits += 1
        self.wait_seconds += waited
        return waited

    def _log_wait(self) -> None:
        _wait_log.event(
            logging.WARNING,
            "upstream_pool_wait",
            (self.name,),
            {
                "provider": self.name,
                "max_connections": self._max,
                "waiting": len(self._waiters) + 1,
                "hint": "calls wait for a free upstream connection; raise or remove "
                "the provider's max_connections",
            },
        )

    def release(self, conn: Http1Connection, reusable: bool) -> None:
        if reusable and not conn.closed:
            self._idle.append((conn, time.monotonic()))
        else:
            self._discard(conn)
        self._wake_one()

    def _discard(self, conn: Http1Connection) -> None:
        conn.close()
        self._open -= 1

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> Http1Connection:
        loop = asyncio.get_running_loop()
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._proxy is None:
                    _, conn = await loop.create_connection(
                        lambda: Http1Connection(loop),
                        self.host,
                        self.port,
                        ssl=self._ssl,
                        server_hostname=self.host if self._ssl else None,
                    )
                    return conn
                return await self._connect_through(self._proxy, loop)
        except TimeoutError:
            via = f" through proxy {self._proxy.address}" if self._proxy else ""
            raise UpstreamTimeoutError(
                f"no connection to {where}{via} within {self._connect_timeout:g} s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
            self._log_refused_certificate(where, reason)
            raise UpstreamConnectionError(
                f"TLS certificate of {where} refused: {reason} (a private CA is trusted "
                "with the provider's ca_bundle setting or SSL_CERT_FILE)"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
            raise UpstreamConnectionError(f"cannot connect to {where}: {reason}") from None

    async def _connect_through(
        self, proxy: Proxy, loop: asyncio.AbstractEventLoop
    ) -> Http1Connection:
        tunnel = await open_tunnel(proxy, self.host, self.port)
        conn = Http1Connection(loop)
        try:
            if self._ssl is None:
                tunnel.set_protocol(conn)
                conn.connection_made(tunnel)
                return conn
            secured = await loop.start_tls(tunnel, conn, self._ssl, server_hostname=self.host)
        except BaseException:
            tunnel.close()
            raise
        assert secured is not None  # start_tls returns None only for a closing transport
        conn.connection_made(secured)
        return conn

    def _log_refused_certificate(self, where: str, reason: str) -> None:
        # Every call fails the same way while the certificate is wrong: say it once a minute.
        now = time.monotonic()
        if now - self._certificate_logged < 60.0:
            return
        self._certificate_logged = now
        log.error("upstream %s: TLS certificate refused (%s); calls to it fail", where, reason)

    async def aclose(self, grace: float = 1.0) -> None:
        """Close the idle connections and wait until they are gone (each at most `grace`
        seconds, see `Http1Connection.closed_within`)."""
        idle = [conn for conn, _ in self._idle]
        self._open -= len(idle)
        self._idle.clear()
        await asyncio.gather(*(conn.closed_within(grace) for conn in idle))
