"""Open a TCP tunnel to an upstream through an HTTP proxy with `CONNECT host:port`.

The proxy resolves the upstream's name (a gateway behind a corporate proxy often cannot), and
once it answers 2xx the connection carries the upstream's bytes untouched: TLS is then
negotiated end to end with the upstream, and its certificate verified as on a direct
connection. Errors name the proxy by `host:port` only, never its credentials.
"""

from __future__ import annotations

import asyncio

from tollhouse.providers.base import UpstreamConnectionError
from tollhouse.providers.proxy_selection import Proxy

# A proxy's answer to CONNECT is a status line and a few headers.
_MAX_HEAD = 16 * 1024


async def open_tunnel(proxy: Proxy, host: str, port: int) -> asyncio.Transport:
    """A transport whose bytes flow to and from `host:port`; its protocol is a placeholder
    the caller replaces (`set_protocol`, or `loop.start_tls`)."""
    loop = asyncio.get_running_loop()
    try:
        transport, reply = await loop.create_connection(
            lambda: _ConnectReply(loop), proxy.host, proxy.port
        )
    except OSError as exc:
        raise UpstreamConnectionError(
            f"cannot connect to proxy {proxy.address}: {exc.strerror or exc}"
        ) from None
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n"
    if proxy.authorization is not None:
        head += f"proxy-authorization: {proxy.authorization}\r\n"
    try:
        transport.write((head + "\r\n").encode("latin-1"))
        status_line = await reply.status_line
    except BaseException:
        transport.close()
        raise
    status = _status(status_line)
    if not 200 <= status < 300:
        transport.close()
        hint = " (check the user and password in the proxy URL)" if status == 407 else ""
        raise UpstreamConnectionError(
            f"proxy {proxy.address} refused CONNECT to {target}: "
            f"{status_line.decode('latin-1', 'replace')}{hint}"
        )
    if reply.overran:
        transport.close()
        # The upstream never speaks first (TLS and HTTP/1.1 wait for the client).
        raise UpstreamConnectionError(f"proxy {proxy.address} sent bytes after its 2xx answer")
    return transport


def _status(status_line: bytes) -> int:
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return 0
    return int(parts[1])


class _ConnectReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT up to its blank line."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status_line: asyncio.Future[bytes] = loop.create_future()
        self._head = b""
        self.overran = False

    def data_received(self, data: bytes) -> None:
        if self.status_line.done():
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end >= 0:
            self.overran = end + 4 < len(self._head)  # a refusal may carry a body
            self.status_line.set_result(self._head.split(b"\r\n", 1)[0])
        elif len(self._head) > _MAX_HEAD:
            self._fail("proxy's answer to CONNECT is too long")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("proxy closed the connection before answering CONNECT")

    def _fail(self, reason: str) -> None:
        if not self.status_line.done():
            self.status_line.set_exception(UpstreamConnectionError(reason))
