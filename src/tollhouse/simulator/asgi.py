"""The simulator over real HTTP (`tollhouse simulate`): a plain ASGI app around `Simulator`.

Base URLs: `http://host:port` for Anthropic clients, `http://host:port/v1` for OpenAI ones.

Connection faults become real broken connections: `reset` closes the socket before any
status line, `mid-stream-reset` after part of the body, so an HTTP client sees exactly what a
dropped provider connection looks like. ASGI has no "abort" message; the app gets there by
making the server fail while it writes the status line (an invalid header value), which
uvicorn answers by closing the transport with nothing written, and by raising after the
body started, which it answers the same way. Those injected failures are kept out of the
server's error log. A client that disconnects cancels its call (no orphaned generation, no
`hang` outliving its caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tollhouse.providers.base import UpstreamConnectionError
from tollhouse.server.runner import serve_forever
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class InjectedConnectionDrop(Exception):
    """Raised out of the app on purpose so that the server drops the connection."""


def _not_injected(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], InjectedConnectionDrop))


class SimulatorApp:
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        logging.getLogger("uvicorn.error").addFilter(_not_injected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return
        respond = asyncio.ensure_future(self._respond(scope, body, send))
        disconnect = asyncio.ensure_future(_wait_for_disconnect(receive))
        await asyncio.wait((respond, disconnect), return_when=asyncio.FIRST_COMPLETED)
        disconnect.cancel()
        if not respond.done():
            respond.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await respond
            return
        respond.result()

    async def _respond(self, scope: Scope, body: bytes, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            path = scope["path"]
            query = scope.get("query_string", b"").decode("latin-1")
            if query:
                path = f"{path}?{query}"
            response = await self.simulator.handle(scope["method"], path, headers, body)
        except UpstreamConnectionError as exc:
            # The server refuses the header value before writing anything, then closes the
            # socket when the app fails (were it ever to accept it: a bodiless 500).
            with contextlib.suppress(Exception):
                await send(
                    {"type": "http.response.start", "status": 500, "headers": [(b"x", b"\n")]}
                )
            raise InjectedConnectionDrop(str(exc)) from exc
        raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
        ]
        try:
            if not response.is_stream:
                await _send_whole(send, response.status, raw_headers, response.read)
                return
            await send(
                {"type": "http.response.start", "status": response.status, "headers": raw_headers}
            )
            async for chunk in response.iter_chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UpstreamConnectionError as exc:
            raise InjectedConnectionDrop(str(exc)) from exc
        finally:
            await response.aclose()


async def _send_whole(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    read: Callable[[], Awaitable[bytes]],
) -> None:
    try:
        body = await read()
    except UpstreamConnectionError:
        # The status line and headers arrive; the body never does.
        await send({"type": "http.response.start", "status": status, "headers": headers})
        raise
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes | None:
    """The request body; None when the client left before sending it all."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(simulator: Simulator) -> ASGIApp:
    return SimulatorApp(simulator)


def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve in the foreground until interrupted."""
    base = f"http://{host}:{port}"
    print(
        f"tollhouse simulator listening on {base}\n"
        f"  Anthropic base URL: {base}\n"
        f"  OpenAI base URL:    {base}/v1",
        flush=True,
    )
    serve_forever(create_app(Simulator(config)), host, port)
