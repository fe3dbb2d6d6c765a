"""Pooled HTTP/1.1 to an upstream, behind the `UpstreamResponse` interface.

One aiohttp session per provider keeps connections alive across calls (no TLS handshake per
request). Network failures are mapped to the two exceptions of `providers.base`, so nothing
above this module sees aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp

from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)

_NETWORK_ERRORS = (aiohttp.ClientError, ConnectionError, OSError)


class HttpUpstreamResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeoutError("upstream went silent while sending its body") from exc
        except _NETWORK_ERRORS as exc:
            raise UpstreamConnectionError(f"upstream connection broke: {exc!r}") from exc
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeoutError("upstream stream went silent") from exc
        except _NETWORK_ERRORS as exc:
            raise UpstreamConnectionError(f"upstream stream broke: {exc!r}") from exc

    async def aclose(self) -> None:
        # Closing (not releasing) a half-read response drops its connection, which is how the
        # upstream learns that the client has gone and stops generating.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class HttpTransport:
    """Sends `UpstreamRequest`s to one base URL with credentials and fixed headers added."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int = 512,
        connect_timeout: float = 10.0,
        read_idle_timeout: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_idle_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so that it binds to the event loop that serves requests.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=60, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
            )
        return self._session

    async def send(self, request: UpstreamRequest) -> HttpUpstreamResponse:
        headers = {**request.headers, **self._headers}
        headers["content-type"] = "application/json"
        if request.stream:
            headers["accept"] = "text/event-stream"
        session = self._get_session()
        try:
            async with asyncio.timeout(request.timeout):
                response = await session.request(
                    request.method,
                    self.base_url + request.path,
                    data=request.body if request.method != "GET" else None,
                    headers=headers,
                )
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream sent no response within {request.timeout:g} s"
            ) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise UpstreamTimeoutError(f"upstream timed out: {exc}") from exc
        except _NETWORK_ERRORS as exc:
            raise UpstreamConnectionError(f"cannot reach upstream: {exc!r}") from exc
        return HttpUpstreamResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
