"""Network pieces a provider meets in production, run on loopback for tests: a TLS front for a
plain upstream (the simulator) and an HTTP CONNECT proxy, each on its own event loop thread.

The proxy dials only 127.0.0.1: every `CONNECT name:port` goes to the loopback port `routes`
maps it to, as a corporate proxy resolves names the gateway cannot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anthropic
import trustme
from tests.support import GATEWAY_KEY

from tollhouse.providers.base import UpstreamRequest
from tollhouse.providers.http_transport import HttpTransport

REQUEST = UpstreamRequest(path="/v1/messages", body=b'{"a": 1}', stream=False, timeout=5.0)
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.contextmanager
def serving_on_thread(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> Iterator[int]:
    """Serve `handler` on a loopback port (yielded) from a thread of its own; at the end every
    connection it still holds is cancelled and the thread's loop closed. A connection is
    closed when its handler ends, however it ends (a handler writes nothing it has not
    drained)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except asyncio.CancelledError:
            pass  # shut down: the task ends here (Python 3.11 logs a handler that ends cancelled)
        finally:
            # Not close(): over TLS it waits for the peer's goodbye, which may never come.
            writer.transport.abort()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = asyncio.run_coroutine_threadsafe(
        asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_context), loop
    )
    server = started.result(timeout=5)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(_shut(server), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


async def _shut(server: asyncio.Server) -> None:
    server.close()
    # A connection accepted as the server closes starts its handler task after a first
    # round of cancelling: go on until no task is left, or the loop would close with it
    # pending and the garbage collector finish its coroutine later, on a closed loop.
    while others := [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]:
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
    await asyncio.sleep(0)  # let the closed transports report connection_lost


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
    """Pipe the connection both ways to the loopback `port`, whose connection is closed when
    it ends, however it ends (a pipe cancelled before it ran never reaches its own close)."""
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        up_writer.transport.abort()


@contextlib.contextmanager
def tls_front(upstream_port: int, ssl_context: ssl.SSLContext) -> Iterator[int]:
    """A TLS listener whose decrypted bytes go to the plain upstream on `upstream_port`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await _splice(reader, writer, upstream_port)

    with serving_on_thread(handler, ssl_context) as port:
        yield port


class ConnectProxy:
    """Records each CONNECT it gets (`targets`, `authorizations`); answers 407 unless the
    client presents `user:password` (when set); 403 for a target it has no route for."""

    def __init__(self, routes: dict[str, int], credentials: tuple[str, str] | None = None):
        self.routes = routes
        self.expected = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        )
        self.targets.append(target)
        self.authorizations.append(headers.get("proxy-authorization"))
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
        elif self.expected is not None and headers.get("proxy-authorization") != self.expected:
            body = b"proxy credentials required"
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'proxy-authenticate: Basic realm="test"\r\n'
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
        elif target not in self.routes:
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with contextlib.suppress(ConnectionError, OSError):
                await _splice(reader, writer, self.routes[target])
            return
        await writer.drain()
        writer.close()


@contextlib.contextmanager
def connect_proxy(
    routes: dict[str, int], credentials: tuple[str, str] | None = None
) -> Iterator[tuple[ConnectProxy, int]]:
    proxy = ConnectProxy(routes, credentials)
    with serving_on_thread(proxy.handle) as port:
        yield proxy, port


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        writer.close()


def call_once(base_url: str, **transport: Any) -> bytes:
    """One whole-answer request to `base_url` with a fresh `HttpTransport(**transport)`."""

    async def main() -> bytes:
        client = HttpTransport(base_url, {}, connect_timeout=5, **transport)
        try:
            return await (await client.send(REQUEST)).read()
        finally:
            await client.aclose()

    return asyncio.run(main())


def provider_config(base_url: str, **settings: Any) -> dict[str, Any]:
    """A gateway config whose only provider, `tls`, is an anthropic upstream at `base_url`
    (`settings` added to it) serving claude-haiku-4-5, tried once per call."""
    return {
        "providers": {"tls": {"type": "anthropic", "base_url": base_url, **settings}},
        "models": {"claude-haiku-4-5": {"deployments": [{"provider": "tls", "model": "c"}]}},
        "timeouts": {"first_byte": 5.0, "read_idle": 5.0, "connect": 5.0},
        "reliability": {"retry": {"max_attempts": 1}},
    }


def assert_sdk_answers(gateway_url: str) -> None:
    """The Anthropic SDK gets a whole answer and a complete stream from `gateway_url`."""
    client = anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)
    hi: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=hi)
    assert message.content[0].type == "text"
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=300, messages=hi) as s:
        assert s.get_final_message().stop_reason == "end_turn"
