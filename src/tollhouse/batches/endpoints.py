"""The batch endpoints, as the official SDKs call them:

- Anthropic: `POST /v1/messages/batches` (create), `GET /v1/messages/batches` (list),
  `GET /v1/messages/batches/{id}` (retrieve), `POST .../{id}/cancel`, `GET .../{id}/results`
  (JSONL);
- OpenAI: `POST /v1/files` (upload, `purpose=batch`), `GET /v1/files/{id}`,
  `GET /v1/files/{id}/content`, `POST /v1/batches` (create), `GET /v1/batches` (list),
  `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`.

A client authenticates with its gateway key as for any call; with `keys.required` the key
needs the `batches` scope, and may only use the models it is allowed. Each request of a
batch is routed as a live call to the same model would be (its route's first
deployment: a batch is never split across providers nor translated to another format),
the model named to the provider is that deployment's, and the batch is relayed with the
gateway's own provider key. At creation admission holds the batch's worst case against
the budgets (`Admitter.reserve_batch`); settlement.py records the lines once it has
ended. A batch or file is only ever shown to the key that made it (held.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from tollhouse.batches.held import HeldBatch, HeldBatches, HeldFile
from tollhouse.batches.lines import CHAT_COMPLETIONS, BatchLine, anthropic_lines, openai_lines
from tollhouse.batches.relay import UpstreamAnswer, passthrough_headers, relay
from tollhouse.batches.settlement import BatchSettlement
from tollhouse.call import Call, Endpoint
from tollhouse.errors import BadRequest, MethodNotAllowed, NotFound, PermissionDenied
from tollhouse.ports.batches.from_config import batch_store_from_config
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.providers.base import Provider
from tollhouse.stages.route import RoutePlan
from tollhouse.types import Reply, WireFormat, json_reply
from tollhouse.wire.multipart import encode_form, parse_form
from tollhouse.wire.request_body import decode_json_object

if TYPE_CHECKING:
    from tollhouse.gateway import Gateway

SCOPE = "batches"
ANTHROPIC_PREFIX = "/v1/messages/batches"
OPENAI_PREFIXES = ("/v1/batches", "/v1/files")
# A reservation outlives the provider's 24 hours of processing by a margin for the poll
# that records it; past it, an unrecorded batch's hold lapses rather than pins a budget.
_LEASE_SECONDS = 25 * 3600.0
_BINARY = b"application/binary"
_OCTETS = b"application/octet-stream"

ReadBody = Callable[[], Awaitable[bytes]]


def process_name() -> str:
    """This process's name in the batch store: host, pid and a random part (a pid is
    reused after a restart, and across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def is_batch_path(path: str) -> bool:
    prefixes = (ANTHROPIC_PREFIX, *OPENAI_PREFIXES)
    return path in prefixes or path.startswith(tuple(prefix + "/" for prefix in prefixes))


def batch_wire_format(path: str) -> WireFormat:
    return "anthropic" if path.startswith(ANTHROPIC_PREFIX) else "openai"


class BatchEndpoints:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        config = gateway.config
        self.store = batch_store_from_config(config.ledger) if config.batches.enabled else None
        self.held = HeldBatches(
            config.batches.max_open, lambda: gateway.snapshot.providers, self.store, process_name()
        )
        self.settlement = BatchSettlement(self.held, gateway.accounting)

    def start(self) -> None:
        """Poll the open batches every `batches.poll_seconds` (on the serving loop)."""
        config = self.gateway.config
        if config.batches.enabled:
            self.settlement.start(config.batches.poll_seconds, config.timeouts)

    async def aclose(self) -> None:
        await self.settlement.aclose()
        if self.store is not None:
            await self.store.aclose()

    async def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        read_body: ReadBody,
        key: KeyRecord | None,
    ) -> Reply:
        """Answer one request to a batch endpoint, made with `key` (None on an open
        gateway)."""
        if not self.gateway.config.batches.enabled:
            raise NotFound(f"{method} {path}: batches are off on this gateway (batches.enabled)")
        if self.gateway.auth.required and (key is None or SCOPE not in key.scopes):
            name = key.key_id if key is not None else "this key"
            raise PermissionDenied(
                f"API key {name} may not use batches: it lacks the `{SCOPE}` scope"
            )
        parts = path.strip("/").split("/")[1:]  # after "v1"
        if parts[0] == "messages":
            return await self._anthropic(method, parts[2:], query, headers, read_body, key)
        if parts[0] == "batches":
            return await self._openai_batches(method, parts[1:], query, headers, read_body, key)
        return await self._files(method, parts[1:], headers, read_body, key)

    # --- Anthropic ------------------------------------------------------------------

    async def _anthropic(
        self,
        method: str,
        rest: list[str],
        query: str,
        headers: Mapping[str, str],
        read_body: ReadBody,
        key: KeyRecord | None,
    ) -> Reply:
        key_id = key.key_id if key is not None else None
        if not rest:
            if method == "POST":
                return await self._anthropic_create(headers, await read_body(), key)
            _require(method, "GET", ANTHROPIC_PREFIX)
            return await self._list("anthropic", key_id, query, headers)
        batch = await self.held.batch(rest[0], key_id)
        action = rest[1] if len(rest) > 1 else None
        timeouts = self.gateway.config.timeouts
        if action is None:
            _require(method, "GET", f"{ANTHROPIC_PREFIX}/{batch.id}")
            return await self._retrieve(batch, headers)
        if action == "cancel" and len(rest) == 2:
            _require(method, "POST", f"{ANTHROPIC_PREFIX}/{batch.id}/cancel")
            answer = await self._to(batch, "POST", f"{ANTHROPIC_PREFIX}/{batch.id}/cancel")
            if not answer.ok:
                return answer.reply()
            return json_reply(await self._shown(batch, answer.json(), headers))
        if action == "results" and len(rest) == 2:
            _require(method, "GET", f"{ANTHROPIC_PREFIX}/{batch.id}/results")
            answer = await self._to(batch, "GET", f"{ANTHROPIC_PREFIX}/{batch.id}/results")
            if not answer.ok:
                return answer.reply()
            ended = {"processing_status": "ended"}  # results exist only once it has ended
            await self.settlement.record_ended(batch, ended, timeouts, results=answer.body)
            return answer.reply(_BINARY)
        raise NotFound(f"{method} {ANTHROPIC_PREFIX}/{'/'.join(rest)}: no such endpoint")

    async def _anthropic_create(
        self, headers: Mapping[str, str], raw: bytes, key: KeyRecord | None
    ) -> Reply:
        doc = decode_json_object(raw)
        lines = anthropic_lines(doc, self.gateway.config.batches.max_requests)
        self.held.check_room("batch")
        calls, plans, provider = self._plan(
            "anthropic",
            "message_batches",
            lines,
            headers,
            key,
            lambda i: f"requests[{i}].params.model",
        )
        upstream = {
            **doc,
            "requests": [
                {"custom_id": call.custom_id, "params": {**call.body, "model": call.upstream_model}}
                for call in calls
            ],
        }
        sent = passthrough_headers(provider, headers)
        return await self._create(
            "anthropic", calls, plans, key, provider, sent, ANTHROPIC_PREFIX, orjson.dumps(upstream)
        )

    # --- OpenAI ---------------------------------------------------------------------

    async def _openai_batches(
        self,
        method: str,
        rest: list[str],
        query: str,
        headers: Mapping[str, str],
        read_body: ReadBody,
        key: KeyRecord | None,
    ) -> Reply:
        key_id = key.key_id if key is not None else None
        if not rest:
            if method == "POST":
                return await self._openai_create(headers, await read_body(), key)
            _require(method, "GET", "/v1/batches")
            return await self._list("openai", key_id, query, headers)
        batch = await self.held.batch(rest[0], key_id)
        action = rest[1] if len(rest) > 1 else None
        if action is None:
            _require(method, "GET", f"/v1/batches/{batch.id}")
            return await self._retrieve(batch, headers)
        if action == "cancel" and len(rest) == 2:
            _require(method, "POST", f"/v1/batches/{batch.id}/cancel")
            answer = await self._to(batch, "POST", f"/v1/batches/{batch.id}/cancel")
            if not answer.ok:
                return answer.reply()
            return json_reply(await self._shown(batch, answer.json(), headers))
        raise NotFound(f"{method} /v1/batches/{'/'.join(rest)}: no such endpoint")

    async def _openai_create(
        self, headers: Mapping[str, str], raw: bytes, key: KeyRecord | None
    ) -> Reply:
        doc = decode_json_object(raw)
        file_id = doc.get("input_file_id")
        if not isinstance(file_id, str) or not file_id:
            raise BadRequest(
                "input_file_id: expected the id of a batch file", param="input_file_id"
            )
        if doc.get("endpoint") != CHAT_COMPLETIONS:
            raise BadRequest(
                f"endpoint: this gateway relays batches of {CHAT_COMPLETIONS}, "
                f"not {doc.get('endpoint')!r}",
                param="endpoint",
            )
        file = await self.held.file(file_id, key.key_id if key is not None else None)
        lines = file.lines
        refused = BadRequest(
            f"input_file_id: {file_id!r} is no batch input file waiting for its batch "
            "(an input file makes one batch on this gateway)",
            param="input_file_id",
        )
        if lines is None:
            raise refused
        self.held.check_room("batch")
        calls, plans, provider = self._plan(
            "openai", "batches", lines, headers, key, lambda i: f"file line {i + 1}: model"
        )
        # Taken before the batch is made, so that two processes can't make two of it.
        if not await self.held.take_file(file):
            raise refused
        try:
            reply = await self._create(
                "openai", calls, plans, key, provider, {}, "/v1/batches", orjson.dumps(doc)
            )
        except BaseException:
            await self.held.give_back_file(file, lines)
            raise
        if reply.status != 200:
            await self.held.give_back_file(file, lines)
        return reply

    async def _files(
        self,
        method: str,
        rest: list[str],
        headers: Mapping[str, str],
        read_body: ReadBody,
        key: KeyRecord | None,
    ) -> Reply:
        key_id = key.key_id if key is not None else None
        if not rest:
            _require(method, "POST", "/v1/files")
            return await self._upload(headers, await read_body(), key)
        file = await self.held.file(rest[0], key_id)
        if len(rest) == 1:
            _require(method, "GET", f"/v1/files/{file.id}")
            return (await self._to(file, "GET", f"/v1/files/{file.id}")).reply()
        if rest[1] == "content" and len(rest) == 2:
            _require(method, "GET", f"/v1/files/{file.id}/content")
            answer = await self._to(file, "GET", f"/v1/files/{file.id}/content")
            return answer.reply(_OCTETS if answer.ok else b"application/json")
        raise NotFound(f"{method} /v1/files/{'/'.join(rest)}: no such endpoint")

    async def _upload(self, headers: Mapping[str, str], raw: bytes, key: KeyRecord | None) -> Reply:
        form = parse_form(headers.get("content-type", ""), raw)
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose is None or purpose.data != b"batch":
            raise BadRequest(
                "purpose: this gateway takes only batch input files (purpose=batch)",
                param="purpose",
            )
        if upload is None or upload.filename is None:
            raise BadRequest("file: expected the batch input file (JSONL)", param="file")
        lines = openai_lines(upload.data, self.gateway.config.batches.max_requests)
        self.held.check_room("file")
        calls, _, provider = self._plan(
            "openai", "batches", lines, headers, key, lambda i: f"file line {i + 1}: model"
        )
        content = b"".join(
            orjson.dumps(
                {
                    "custom_id": call.custom_id,
                    "method": "POST",
                    "url": CHAT_COMPLETIONS,
                    "body": {**call.body, "model": call.upstream_model},
                }
            )
            + b"\n"
            for call in calls
        )
        content_type, body = encode_form({"purpose": "batch"}, {"file": (upload.filename, content)})
        answer = await relay(
            provider, "POST", "/v1/files", self.gateway.config.timeouts,
            body=body, headers={"content-type": content_type},
        )  # fmt: skip
        doc = answer.json()
        if answer.ok and isinstance(doc, dict) and isinstance(doc.get("id"), str):
            key_id = key.key_id if key is not None else None
            await self.held.add_file(HeldFile(doc["id"], key_id, provider, lines))
        return answer.reply()

    # --- shared ---------------------------------------------------------------------

    async def _to(self, held: HeldBatch | HeldFile, method: str, path: str) -> UpstreamAnswer:
        """`method path` relayed to the provider that has `held`."""
        return await self.settlement.relay_to(held, method, path, self.gateway.config.timeouts)

    def _plan(
        self,
        fmt: WireFormat,
        endpoint: Endpoint,
        lines: list[BatchLine],
        headers: Mapping[str, str],
        key: KeyRecord | None,
        where: Callable[[int], str],
    ) -> tuple[list[Call], list[RoutePlan], Provider]:
        """Each line as the call it will be recorded as, routed as a live call to its
        model would be, and the one provider the batch goes to."""
        snapshot = self.gateway.snapshot
        calls: list[Call] = []
        plans: list[RoutePlan] = []
        provider: Provider | None = None
        for i, line in enumerate(lines):
            call = Call(fmt, endpoint, line.body, b"", headers, custom_id=line.custom_id)
            call.config_version = snapshot.version
            self.gateway.auth.authorize(call, key)
            try:
                plan = snapshot.lifecycle.check(call, snapshot.router.route(call, key))
            except NotFound as error:
                raise BadRequest(f"{where(i)}: {error.message}", param=where(i)) from None
            target = plan.targets[0]
            if target.provider.wire_format != fmt:
                raise BadRequest(
                    f"{where(i)}: {line.model!r} is served by provider {target.provider.name}, "
                    f"which speaks the {target.provider.wire_format} format; a batch is "
                    "relayed only to a provider of its own format",
                    param=where(i),
                )
            if provider is None:
                provider = target.provider
            elif target.provider is not provider:
                raise BadRequest(
                    f"{where(i)}: {line.model!r} is served by provider {target.provider.name}, "
                    f"the requests before it by {provider.name}; one batch goes to one "
                    "provider",
                    param=where(i),
                )
            call.provider_name = provider.name
            call.upstream_model = target.upstream_model
            calls.append(call)
            plans.append(plan)
        assert provider is not None  # lines are never empty
        return calls, plans, provider

    async def _create(
        self,
        fmt: WireFormat,
        calls: list[Call],
        plans: list[RoutePlan],
        key: KeyRecord | None,
        provider: Provider,
        sent: dict[str, str],
        path: str,
        body: bytes,
    ) -> Reply:
        """Reserve the batch's budgets, create it at `provider`, and hold it; what is
        reserved goes back when the provider refuses it."""
        admitter = self.gateway.admitter
        await admitter.reserve_batch(list(zip(calls, plans, strict=True)), key, _LEASE_SECONDS)
        try:
            answer = await relay(
                provider, "POST", path, self.gateway.config.timeouts, body=body, headers=sent
            )
        except BaseException:
            for call in calls:
                admitter.finish(call)
            raise
        doc = answer.json()
        if not answer.ok or not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            for call in calls:
                admitter.finish(call)
            return answer.reply()
        batch_id = doc["id"]
        for call in calls:
            call.batch_id = batch_id
            call.request_id = f"{batch_id}:{call.custom_id}"
        batch = HeldBatch(
            batch_id,
            fmt,
            key.key_id if key is not None else None,
            provider,
            {call.custom_id or "": call for call in calls},
            sent,
        )
        await self.held.add_batch(batch)
        return json_reply(await self._shown(batch, doc, {}))

    async def _retrieve(self, batch: HeldBatch, headers: Mapping[str, str]) -> Reply:
        answer = await self._to(batch, "GET", _batch_path(batch))
        if not answer.ok:
            return answer.reply()
        doc = answer.json()
        await self.settlement.record_ended(batch, doc, self.gateway.config.timeouts)
        return json_reply(await self._shown(batch, doc, headers))

    async def _list(
        self, fmt: WireFormat, key_id: str | None, query: str, headers: Mapping[str, str]
    ) -> Reply:
        """The key's batches held here, newest first, one page of them, each as its
        provider describes it now."""
        params = {name: values[-1] for name, values in parse_qs(query).items()}
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise BadRequest("limit: expected an integer from 1 to 1000", param="limit")
        owned = await self.held.owned(key_id, fmt)
        ids = [batch.id for batch in owned]
        after = params.get("after_id" if fmt == "anthropic" else "after")
        before = params.get("before_id")
        if before in ids:
            end = ids.index(before)
            page = owned[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            start = ids.index(after) + 1 if after in ids else 0
            page = owned[start : start + limit]
            has_more = start + limit < len(owned)
        timeouts = self.gateway.config.timeouts

        async def described(batch: HeldBatch) -> dict[str, Any] | None:
            answer = await self._to(batch, "GET", _batch_path(batch))
            doc = answer.json()
            if not answer.ok or not isinstance(doc, dict):
                return None
            await self.settlement.record_ended(batch, doc, timeouts)
            return await self._shown(batch, doc, headers)

        docs = [doc for doc in await asyncio.gather(*map(described, page)) if doc is not None]
        listed: dict[str, Any] = {
            "data": docs,
            "has_more": has_more,
            "first_id": docs[0]["id"] if docs else None,
            "last_id": docs[-1]["id"] if docs else None,
        }
        if fmt == "openai":
            listed = {"object": "list", **listed}
        return json_reply(listed)

    async def _shown(
        self, batch: HeldBatch, doc: object, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """The provider's batch object as this gateway's client sees it: an Anthropic
        `results_url` pointing at the gateway (the SDK fetches results from it), and an
        OpenAI batch's output and error files readable by the batch's key."""
        if not isinstance(doc, dict):
            raise BadRequest(f"batch {batch.id}: the provider's answer is not a batch object")
        if batch.client_format == "anthropic":
            if doc.get("results_url"):
                doc["results_url"] = f"{_base_url(headers)}{ANTHROPIC_PREFIX}/{batch.id}/results"
            return doc
        for name in ("output_file_id", "error_file_id"):
            file_id = doc.get(name)
            if isinstance(file_id, str) and not await self.held.knows_file(file_id):
                await self.held.add_file(HeldFile(file_id, batch.key_id, batch.provider))
        return doc


def _base_url(headers: Mapping[str, str]) -> str:
    """Where the client reached this gateway: its Host, over the scheme a proxy in front
    says (`x-forwarded-proto`); a relative URL when the request named no host."""
    host = headers.get("host")
    if not host:
        return ""
    scheme = headers.get("x-forwarded-proto", "http").split(",", 1)[0].strip() or "http"
    return f"{scheme}://{host}"


def _batch_path(batch: HeldBatch) -> str:
    if batch.client_format == "anthropic":
        return f"{ANTHROPIC_PREFIX}/{batch.id}"
    return f"/v1/batches/{batch.id}"


def _require(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"{method} {path}: only {allowed} is allowed")
