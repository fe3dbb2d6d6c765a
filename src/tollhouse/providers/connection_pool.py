"""Keep-alive connections to one upstream origin, bounded in number.

Idle connections are reused newest first (the likeliest to still be open) and dropped after
`keepalive` seconds; when `max_connections` are busy, callers queue for the next release
instead of opening more. A connection is made directly or through a `CONNECT` tunnel
(`proxy`), over TLS when the pool has an SSL context; the connect timeout bounds all of it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque

from tollhouse.providers.base import UpstreamConnectionError, UpstreamTimeoutError
from tollhouse.providers.connect_tunnel import open_tunnel
from tollhouse.providers.http1_connection import Http1Connection
from tollhouse.providers.proxy_selection import Proxy

log = logging.getLogger("tollhouse.upstream")


class ConnectionPool:
    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int,
        connect_timeout: float,
        keepalive: float = 60.0,
        proxy: Proxy | None = None,
    ) -> None:
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

    async def acquire(self) -> Http1Connection:
        while True:
            now = time.monotonic()
            while self._idle:
                conn, since = self._idle.pop()
                if not conn.closed and now - since < self._keepalive:
                    return conn
                self._discard(conn)
            if self._open < self._max:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

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
