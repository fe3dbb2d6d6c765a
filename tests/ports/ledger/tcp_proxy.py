"""A loopback TCP relay to PostgreSQL that a test controls: cut (connections reset, new ones
refused), stalled (connections held open, nothing forwarded either way: a database that
froze), restored. The shared server itself is never touched."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class TcpProxy:
    """Run on the test's event loop; `ProxyThread` runs one on a thread of its own."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.WriteTransport] = []
        self._forwarding = asyncio.Event()
        self._forwarding.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in self._transports:
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()

    def stall(self) -> None:
        """Stop forwarding bytes, holding every connection (new ones too) open."""
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Ended by cancellation when the proxy shuts down; asyncio's stream callback would
        # log a cancelled handler as an error.
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.append(writer.transport)
        await self._forwarding.wait()
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._transports.append(up_writer.transport)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    await self._forwarding.wait()
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class ProxyThread:
    """A `TcpProxy` on its own event loop thread, for tests whose gateway is a process."""

    def __init__(self, host: str, port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.proxy = self._run(self._made(host, port))
        self._run(self.proxy.start())

    @property
    def port(self) -> int:
        return self.proxy.port

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.stall)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.resume)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _made(self, host: str, port: int) -> TcpProxy:
        return TcpProxy(host, port)

    async def _shut(self) -> None:
        await self.proxy.cut()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)


@contextlib.contextmanager
def proxy_thread(host: str, port: int) -> Iterator[ProxyThread]:
    proxy = ProxyThread(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
