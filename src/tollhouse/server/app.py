"""The ASGI application: HTTP in, `Call` to the gateway, `Reply` out.

Plain ASGI with no framework on purpose: the request path is a dict lookup, a body read and
one JSON parse, which keeps the gateway's added latency well under a millisecond. Every
failure, including a request we cannot even parse, is answered in the client's own wire
format with the right status; nothing escapes as a bare 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote

from prometheus_client.core import Metric

from tollhouse.batches.endpoints import batch_wire_format, is_batch_path
from tollhouse.call import Call, Endpoint, new_request_id
from tollhouse.dashboard.http import DashboardHttp, is_dashboard_path
from tollhouse.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    TollhouseError,
    UnsupportedMediaType,
)
from tollhouse.gateway import Gateway
from tollhouse.observability.metrics import gauge
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.reliability.load_shedding import InFlightLimiter
from tollhouse.server.admin import (
    FROM_ENVIRONMENT,
    AdminApi,
    AdminToken,
    admin_wire_format,
    is_admin_path,
)
from tollhouse.server.body_reader import CLIENT_CLOSED, BodyReader
from tollhouse.server.client_format import guess_format
from tollhouse.server.drain import Drain
from tollhouse.server.feedback import FEEDBACK_PATH, feedback_reply
from tollhouse.server.http_protocol import REFUSED, ConnectionLimits
from tollhouse.stages.account import chunk_sent, reply_leaving
from tollhouse.stages.auth import attribute
from tollhouse.types import Reply, WireFormat, json_reply
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire
from tollhouse.wire import responses as responses_wire
from tollhouse.wire.body_bounds import let_others_run, parse_bounded
from tollhouse.wire.formats import FORMATS

log = logging.getLogger("tollhouse.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CALL_ENDPOINTS: dict[str, tuple[WireFormat, Endpoint, Callable[[bytes], dict[str, Any]]]] = {
    "/v1/messages": ("anthropic", "messages", anthropic_wire.parse_messages_request),
    "/v1/messages/count_tokens": (
        "anthropic",
        "count_tokens",
        anthropic_wire.parse_count_tokens_request,
    ),
    "/v1/chat/completions": ("openai", "chat_completions", openai_wire.parse_chat_request),
    "/chat/completions": ("openai", "chat_completions", openai_wire.parse_chat_request),
    "/v1/responses": ("responses", "responses", responses_wire.parse_responses_request),
    "/responses": ("responses", "responses", responses_wire.parse_responses_request),
    "/v1/embeddings": ("openai", "embeddings", openai_wire.parse_embeddings_request),
    "/embeddings": ("openai", "embeddings", openai_wire.parse_embeddings_request),
}
_STORED_RESPONSES = ("/v1/responses/", "/responses/")


# Seconds a ledger write may take before /readyz says the ledger is slow (a healthy batch
# takes milliseconds), ahead of the write timeout that declares the store failed.
_LEDGER_STALL_REPORTED = 1.0

_GC_THRESHOLDS = (50_000, 20, 20)
_FEEDBACK_BODY_LIMIT = (
    4096  # a request id and a score  # allocations per young collection; older: every 20
)


class GatewayApp:
    """`admin_token` guards the admin API: by default `TOLLHOUSE_ADMIN_TOKEN`, read once,
    here; None disables the admin API."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        admin_token: AdminToken = FROM_ENVIRONMENT,
    ) -> None:
        self.gateway = gateway
        self.admin = AdminApi(gateway, admin_token)
        self.dashboard = DashboardHttp(gateway, self.admin)
        self.ready = False
        self.in_flight = InFlightLimiter(gateway.config.reliability.max_in_flight)
        self.connection_limits = ConnectionLimits.from_config(gateway.config)
        limits = gateway.config.limits
        self.bodies = BodyReader(limits.max_body_reads_per_key, limits.max_partial_body_bytes)
        self.drain = Drain(gateway.config.server.drain_seconds)
        gateway.metrics.add_gauges(self._load_gauges)

    @property
    def drain_seconds(self) -> float:
        """How long a shutdown lets calls finish before ending them (the runner reads it)."""
        return self.drain.seconds

    def begin_drain(self) -> None:
        """A shutdown has begun (called by the runner on the serving loop): /readyz says
        so, and calls still running after `drain_seconds` are ended (server/drain.py)."""
        self.ready = False
        self.drain.begin()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _load_gauges(self) -> Iterator[Metric]:
        in_flight = self.in_flight.in_flight
        yield gauge("tollhouse_in_flight_calls", "Calls in flight", [], [([], in_flight)])
        yield gauge(
            "tollhouse_shed_calls",
            "Calls refused by load shedding since start",
            [],
            [([], self.in_flight.shed)],
        )
        # Rendered on the serving loop (the /metrics handler), so these are its tasks: a
        # count that keeps growing under steady load is a leak (bench/soak.py watches it).
        yield gauge(
            "tollhouse_event_loop_tasks",
            "asyncio tasks alive on the serving event loop",
            [],
            [([], len(asyncio.all_tasks()))],
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.start()
                except Exception as error:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                # Everything loaded so far (modules, config, catalog) lives as long as the
                # process: moved out of the collector's sight, a full collection walks
                # what the calls allocate, not the whole heap (tens of ms, a p99 stall).
                gc.collect()
                gc.freeze()
                # A call allocates hundreds of objects, nearly all freed by reference
                # counting; collecting every 700 allocations (the default) mostly finds
                # nothing (bench/results/decisions.md has the figures).
                gc.set_threshold(*_GC_THRESHOLDS)
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.gateway.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        endpoint = _CALL_ENDPOINTS.get(path)
        fmt = endpoint[0] if endpoint else admin_wire_format(path) or guess_format(path, headers)
        request_id = new_request_id()
        started = time.perf_counter()
        call: Call | None = None
        key: KeyRecord | None = None
        decoded: Call | None = None
        admitted = False
        try:
            if endpoint is not None:
                if scope["method"] != "POST":
                    raise MethodNotAllowed(f"{scope['method']} {path}: only POST is allowed")
                key = await self.gateway.auth.identify(headers)
                owner = key.key_id if key is not None else _client_address(scope)
                # The body is read before a slot is taken: a slow client holds only its own
                # connection (bounded by server.body_timeout), never a slot.
                decoded = await self._decode_call(
                    endpoint, headers, receive, request_id, owner, started
                )
                if not self.in_flight.try_acquire():
                    raise Overloaded(
                        f"the gateway is at its limit of {self.in_flight.limit} calls in flight; "
                        "retry shortly",
                        headers={"retry-after": "1"},
                    )
                admitted = True
                call = decoded
                async with self.drain.cuttable():
                    reply = await self.gateway.handle(call, key)
            elif path.startswith(_STORED_RESPONSES):
                fmt = "responses"
                _require_method(scope["method"], "GET", path)
                key = await self.gateway.auth.identify(headers)
                response_id = unquote(path.split("/responses/", 1)[1])
                key_id = key.key_id if key is not None else None
                reply = await self.gateway.responses.stored(response_id, key_id, headers)
            elif is_batch_path(path):
                fmt = batch_wire_format(path)
                key = await self.gateway.auth.identify(headers)
                owner = key.key_id if key is not None else _client_address(scope)
                limit = self.gateway.config.limits.max_body_bytes
                reply = await self.gateway.batches.handle(
                    scope["method"],
                    path,
                    scope.get("query_string", b"").decode("latin-1"),
                    headers,
                    lambda: self.bodies.read(receive, headers, owner, limit),
                    key,
                )
            elif path == FEEDBACK_PATH:
                _require_method(scope["method"], "POST", path)
                key = await self.gateway.auth.identify(headers)
                owner = key.key_id if key is not None else _client_address(scope)
                raw = await self.bodies.read(receive, headers, owner, _FEEDBACK_BODY_LIMIT)
                reply = await feedback_reply(self.gateway, key, raw)
            elif is_admin_path(path):
                limit = self.gateway.config.limits.max_body_bytes
                reply = await self.admin.handle(
                    scope["method"],
                    path,
                    scope.get("query_string", b""),
                    headers,
                    lambda: self.bodies.read(receive, headers, _client_address(scope), limit),
                )
            elif is_dashboard_path(path):
                limit = self.gateway.config.limits.max_body_bytes
                reply = await self.dashboard.handle(
                    scope["method"],
                    path,
                    scope.get("query_string", b""),
                    headers,
                    lambda: self.bodies.read(receive, headers, _client_address(scope), limit),
                    secure=scope.get("scheme") == "https",
                    request_id=request_id,
                )
            else:
                reply = self._plain_endpoint(scope["method"], path, fmt)
        except TollhouseError as raised:
            # A stalled body was answered (408) by the protocol, the app saw a disconnect.
            exc: TollhouseError = scope.get(REFUSED, raised)
            reply = _error_reply(exc, fmt, request_id)
            if call is None and endpoint is not None:
                call = _refused_call(endpoint, headers, request_id, started, decoded, key)
            if call is not None:
                call.error_type = exc.type_for(fmt)
        except Exception:
            log.exception(
                "unexpected failure on %s %s (request %s)", scope["method"], path, request_id
            )
            reply = _error_reply(InternalError("internal gateway error"), fmt, request_id)
            if call is None and endpoint is not None:
                call = _refused_call(endpoint, headers, request_id, started, decoded, key)
        _identify(reply, fmt, request_id, call, self.gateway.config_version)
        if call is not None:
            reply_leaving(call, reply, self.gateway.ledger.keeps_answer_text)
        status = reply.status
        finished = False
        before_end: Callable[[], Awaitable[None]] | None = None
        if call is not None and self.gateway.ledger.synced:
            accounted = call

            async def finish_durably() -> None:
                # ledger.durability synced: the record is on disk before the last byte.
                nonlocal finished
                finished = True
                durable = self.gateway.accounting.finish(accounted, status)
                if durable is not None:
                    await durable

            before_end = finish_durably
        try:
            if reply.stream is None:
                if before_end is not None:
                    await before_end()
                await _send_whole(send, reply)
            elif (
                not await _send_stream(send, receive, reply, call, self.drain, before_end)
                and call is not None
            ):
                # Gone before the stream's end (or dropped for reading nothing of it,
                # timeouts.read_idle): recorded as the client's doing, nginx's 499.
                status = CLIENT_CLOSED
                call.error_type = "client_disconnected"
        finally:
            if admitted:
                self.in_flight.release()
            if call is not None and not finished:
                self.gateway.accounting.finish(call, status)

    async def _decode_call(
        self,
        endpoint: tuple[WireFormat, Endpoint, Callable[[bytes], dict[str, Any]]],
        headers: dict[str, str],
        receive: Receive,
        request_id: str,
        owner: str,
        started: float,
    ) -> Call:
        fmt, kind, parse = endpoint
        content_type = headers.get("content-type")
        if content_type and "json" not in content_type.split(";", 1)[0].lower():
            raise UnsupportedMediaType(
                f"content-type {content_type!r} is not supported; send application/json"
            )
        limits = self.gateway.config.limits
        raw = await self.bodies.read(receive, headers, owner, limits.max_body_bytes)
        await let_others_run(len(raw))
        body = parse_bounded(raw, parse, limits)
        await let_others_run(len(raw))
        return Call(
            client_format=fmt,
            endpoint=kind,
            body=body,
            raw_body=raw,
            headers=headers,
            request_id=request_id,
            started=started,
        )

    def _plain_endpoint(self, method: str, path: str, fmt: WireFormat) -> Reply:
        if path in ("/v1/models", "/models"):
            _require_method(method, "GET", path)
            return self.gateway.models_reply(fmt)
        if path.startswith(("/v1/models/", "/models/")):
            _require_method(method, "GET", path)
            return self.gateway.models_reply(fmt, unquote(path.split("/models/", 1)[1]))
        if path == "/metrics":
            _require_method(method, "GET", path)
            return Reply(
                status=200,
                body=self.gateway.metrics.render(),
                content_type=b"text/plain; version=0.0.4; charset=utf-8",
            )
        if path == "/healthz":
            _require_method(method, "GET", path)
            return json_reply({"status": "ok"})
        if path == "/readyz":
            _require_method(method, "GET", path)
            if not self.ready:
                state = "draining" if self.drain.draining else "starting"
                return json_reply({"status": state}, status=503)
            return self._readiness()
        raise NotFound(f"{method} {path}: no such endpoint")

    def _readiness(self) -> Reply:
        """Ready, or degraded and why. Counters that can't be reached make the gateway not
        ready when it fails closed (it refuses every limited call); failing open it still
        serves, so it stays in rotation but says it is degraded."""
        gateway = self.gateway
        doc: dict[str, Any] = {
            "status": "ready",
            "config_version": gateway.config_version,
            "simulated_providers": gateway.simulated_providers,
        }
        problems = {}
        if gateway.versions is not None and gateway.versions.problem is not None:
            problems["config"] = gateway.versions.problem
        admitter = gateway.admitter
        if not admitter.store_available:
            problems["counters"] = admitter.last_error or "unavailable"
        ledger = gateway.ledger.writer
        if ledger is not None and not ledger.store_available:
            problems["ledger"] = f"{ledger.last_error}; records are spilled and replayed"
        elif ledger is not None and ledger.write_stalled_for > _LEDGER_STALL_REPORTED:
            problems["ledger"] = (
                f"the store has taken {ledger.write_stalled_for:.1f} s over a write; records "
                f"are spilled after ledger.write_timeout_seconds ({ledger.write_timeout} s)"
            )
        status = 200
        if problems:
            doc["status"] = "degraded"
            doc["problems"] = problems
            if "counters" in problems and not admitter.fail_open:
                doc["status"] = "unavailable"
                status = 503
        return json_reply(doc, status=status)


def _refused_call(
    endpoint: tuple[WireFormat, Endpoint, Callable[[bytes], dict[str, Any]]],
    headers: dict[str, str],
    request_id: str,
    started: float,
    decoded: Call | None,
    key: KeyRecord | None,
) -> Call:
    """The call a request refused before it reached the gateway stands for, so that it is
    recorded and counted as the client saw it: the decoded call when its body was read (a
    refusal by load shedding), else one with an empty body (no model: `other` in metrics);
    on the key's owner when the key was identified."""
    call = decoded
    if call is None:
        fmt, kind, _ = endpoint
        call = Call(fmt, kind, {}, b"", headers, request_id=request_id, started=started)
    if key is not None:
        attribute(call, key)
    return call


def _require_method(method: str, allowed: str, path: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise MethodNotAllowed(f"{method} {path}: only {allowed} is allowed")


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _error_reply(exc: TollhouseError, fmt: WireFormat, request_id: str) -> Reply:
    reply = Reply(status=exc.status_for(fmt), body=exc.body(fmt, request_id))
    for name, value in exc.headers.items():
        reply.add_header(name, value)
    return reply


def _identify(
    reply: Reply, fmt: WireFormat, request_id: str, call: Call | None, serving: int | None
) -> None:
    """The reply's identifying headers. `x-tollhouse-config-version` names the config
    version that served the call (the one served now for a reply that is no call's)."""
    reply.add_header(FORMATS[fmt].request_id_header, request_id)
    reply.add_header("x-tollhouse-request-id", request_id)
    version = call.config_version if call is not None else None
    if version is None:
        version = serving
    if version is not None:
        reply.add_header("x-tollhouse-config-version", str(version))
    if call is None:
        return
    if call.upstream_request_id:
        reply.add_header("x-upstream-request-id", call.upstream_request_id)
    if call.variant is not None:
        reply.add_header("x-tollhouse-variant", call.variant)
    if call.max_tokens_clamp is not None:
        by, asked, sent = call.max_tokens_clamp
        reply.add_header(
            "x-tollhouse-max-tokens-clamped",
            f"sent={sent}; asked={'unset' if asked is None else asked}; by={by}",
        )
    if call.lifecycle is not None:
        reply.headers.extend(call.lifecycle.headers)
    if call.dropped_params:
        reply.add_header("x-tollhouse-dropped-params", ", ".join(call.dropped_params))
    if call.route_rule is not None:
        reply.add_header("x-tollhouse-route-rule", call.route_rule)
        if call.escalated:
            reply.add_header("x-tollhouse-escalated", "true")
    if call.history_trimmed is not None:
        messages, tokens = call.history_trimmed
        reply.add_header("x-tollhouse-history-trimmed", f"messages={messages}; tokens={tokens}")
    if call.attempts and all(name != b"x-tollhouse-attempts" for name, _ in reply.headers):
        # Replies built by dispatch carry it already; errors raised past dispatch do not.
        reply.add_header("x-tollhouse-attempts", str(call.attempts))


async def _send_whole(send: Send, reply: Reply) -> None:
    headers = [
        (b"content-type", reply.content_type),
        (b"content-length", str(len(reply.body)).encode()),
        *reply.headers,
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _send_stream(
    send: Send,
    receive: Receive,
    reply: Reply,
    call: Call | None,
    drain: Drain,
    before_end: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Relay chunks as they come; a client that goes away cancels the upstream call. True
    when the stream was relayed to its end (or ended by a shutdown's drain, with an error
    event in the client's format), False when the client left first. `before_end` runs
    after the last chunk, before the end of the body."""
    assert reply.stream is not None
    stream = reply.stream
    headers = [
        (b"content-type", reply.content_type),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        *reply.headers,
    ]

    started = False

    async def start() -> None:
        nonlocal started
        started = True
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})

    async def pump() -> None:
        await start()
        async for chunk in stream:
            if call is not None:
                chunk_sent(call, chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if before_end is not None:
            await before_end()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(watch_disconnect())
    cut: Overloaded | None = None
    try:
        async with drain.cuttable():
            await asyncio.wait((pump_task, watch_task), return_when=asyncio.FIRST_COMPLETED)
    except Overloaded as refusal:
        cut = refusal
    finally:
        for task in (pump_task, watch_task):
            task.cancel()
        results = await asyncio.gather(pump_task, watch_task, return_exceptions=True)
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    if cut is not None and call is not None:
        if not started:
            await start()
        status = cut.status_for(call.client_format)
        event = call.wire.stream_error_event(f"{cut.message}; the answer is incomplete", status)
        chunk_sent(call, event)
        await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    failure = results[0]
    if isinstance(failure, Exception):
        log.error("stream relay failed", exc_info=failure)
    return not isinstance(failure, asyncio.CancelledError)


def create_app(
    gateway: Gateway,
    *,
    admin_token: AdminToken = FROM_ENVIRONMENT,
) -> GatewayApp:
    return GatewayApp(gateway, admin_token=admin_token)
