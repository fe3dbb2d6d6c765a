"""Send `UpstreamRequest`s over pooled HTTP/1.1 to one base URL.

Credentials and fixed headers are added here, so nothing above knows them. A request that
fails on a reused keep-alive connection before any byte of answer came back is sent once
more on a fresh connection: the upstream had closed the idle connection, it never saw it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)
from tollhouse.providers.connection_pool import ConnectionPool
from tollhouse.providers.http1_connection import Http1Response
from tollhouse.providers.proxy_selection import select_proxy
from tollhouse.providers.tls_context import verifying_context


class HttpTransport:
    """`ca_bundle` replaces the trust store for an https URL (tls_context.py); `proxy` is a
    provider's resolved proxy setting, None to follow the environment (proxy_selection.py).
    Both are settled here, once: a bad bundle or proxy URL raises ValueError."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int | None = None,
        connect_timeout: float = 10.0,
        read_idle_timeout: float = 600.0,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        name: str = "",
    ) -> None:
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        self.base_url = base_url.rstrip("/")
        self._prefix = url.path
        host_header = url.hostname if url.port is None else f"{url.hostname}:{port}"
        fixed = {"host": host_header, **{k.lower(): v for k, v in headers.items()}}
        self._fixed_head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items() if _safe(v))
        self._fixed_names = frozenset(fixed)
        self._read_idle_timeout = read_idle_timeout
        self._pool = ConnectionPool(
            url.hostname,
            port,
            verifying_context(ca_bundle) if secure else None,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            proxy=select_proxy(url.scheme, url.hostname, port, proxy, os.environ),
            name=name,
        )

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    def _payload(self, request: UpstreamRequest) -> bytes:
        lines = [f"{request.method} {self._prefix}{request.path} HTTP/1.1\r\n", self._fixed_head]
        content_type = "application/json"
        for name, value in request.headers.items():
            key = name.lower()
            if key == "content-type":  # a batch file's multipart upload; else JSON
                content_type = value
            elif key not in self._fixed_names and _safe(value) and _safe(key):
                lines.append(f"{key}: {value}\r\n")
        if request.method != "GET" and _safe(content_type):
            lines.append(f"content-type: {content_type}\r\n")
            lines.append(f"content-length: {len(request.body)}\r\n")
        if request.stream:
            lines.append("accept: text/event-stream\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        return head + request.body if request.method != "GET" else head

    async def send(self, request: UpstreamRequest) -> Http1Response:
        payload = self._payload(request)
        for attempt in (1, 2):
            conn, waited = await self._pool.acquire()
            request.pool_wait += waited
            reused = conn.served > 0
            idle = request.read_idle_timeout or self._read_idle_timeout
            response = conn.start(payload, idle, self._pool.release)
            try:
                async with asyncio.timeout(request.timeout):
                    await response.wait_headers()
            except TimeoutError:
                await response.aclose()
                raise UpstreamTimeoutError(
                    f"upstream sent no response within {request.timeout:g} s"
                ) from None
            except UpstreamConnectionError:
                await response.aclose()
                if attempt == 1 and reused and not response.got_bytes:
                    continue
                raise
            except BaseException:
                await response.aclose()
                raise
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._pool.aclose()


def _safe(value: str) -> bool:
    return "\r" not in value and "\n" not in value
