"""The dashboard's calls: a filtered, searchable table read one page at a time (a cursor,
never an offset, so page 1,000 costs what page 1 does), one call with every field the
ledger keeps, and a replay of a call through the gateway.

A replay is a new call: rebuilt from the ledger's text of the original (kept only when
`ledger.text` is `redacted` or `full`, so a redacted prompt is replayed redacted), sent
through every stage as the original key (its limits, budget and ledger record apply), and
answered beside the original's answer. The ledger keeps the conversation as `role: text`
lines, not the request itself, so what is replayed is the text of the messages, without
their tools, images or sampling parameters; the answer says so.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import msgspec
import orjson

from tollhouse.accounting.call_text import answer_text
from tollhouse.call import Call, Endpoint, new_request_id
from tollhouse.dashboard.views import Params, ledger_of, one
from tollhouse.errors import BadRequest, NotFound, TollhouseError
from tollhouse.gateway import Gateway
from tollhouse.ports.keys.base import KeyStoreUnavailable
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.stages.account import reply_leaving

DEFAULT_PAGE, MAX_PAGE = 50, 200
REPLAY_MAX_TOKENS = 1024  # the ledger does not keep the original's max_tokens

# Query parameter -> ledger column filtered on by equality.
_EQUAL = {
    "model": "model_served",
    "route": "route",
    "key": "key_id",
    "user": "end_user",
    "team": "team",
    "project": "project",
    "error_type": "error_type",
    "variant": "variant",
}
_ROW_FIELDS = (
    "request_id",
    "ts",
    "model_requested",
    "model_served",
    "key_id",
    "end_user",
    "status",
    "error_type",
    "truncated",
    "variant",
    "stream",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
_ROLE_LINE = re.compile(r"^(system|developer|user|assistant|tool): ?", re.MULTILINE)
_REPLAYABLE: dict[str, tuple[Endpoint, str]] = {
    "/v1/messages": ("messages", "anthropic"),
    "/v1/chat/completions": ("chat_completions", "openai"),
}


async def calls_page(gateway: Gateway, params: Params) -> dict[str, Any]:
    """One page of calls, newest first, matching every filter given; `next_cursor` (the
    last call's request id) asks for the next page, None on the last one."""
    store = ledger_of(gateway)
    filters: dict[str, Any] = {}
    for name, column in _EQUAL.items():
        value = one(params, name, "")
        if value:
            filters[column] = value
    status = one(params, "status", "")
    errors_only = status == "errors"
    if status and not errors_only:
        if not status.isdigit():
            raise BadRequest(
                f"status: expected an HTTP status or `errors`, got {status!r}", param="status"
            )
        filters["status"] = int(status)
    truncated = one(params, "truncated", "", ("", "true", "false"))
    if truncated:
        filters["truncated"] = truncated == "true"
    limit_text = one(params, "limit", str(DEFAULT_PAGE))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        raise BadRequest(f"limit: expected 1..{MAX_PAGE}, got {limit_text!r}", param="limit")
    limit = int(limit_text)
    records = await store.query(
        since=_moment(params, "since"),
        until=_moment(params, "until"),
        limit=limit + 1,
        filters=filters,
        search=one(params, "q", "") or None,
        errors_only=errors_only,
        after=one(params, "cursor", "") or None,
    )
    page = records[:limit]
    return {
        "calls": [_row(record) for record in page],
        "next_cursor": page[-1].request_id if len(records) > limit else None,
    }


async def call_detail(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """Every field the ledger keeps of one call, its text as stored (redacted or not per
    `ledger.text`; None when not kept)."""
    return _document(await _record(gateway, request_id))


async def replay(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """The call `request_id` made again through the gateway, with both answers."""
    original = await _record(gateway, request_id)
    endpoint = _REPLAYABLE.get(original.endpoint)
    if endpoint is None:
        raise BadRequest(
            f"only Messages and Chat Completions calls replay, not {original.endpoint}"
        )
    if not original.prompt_text:
        raise BadRequest(
            "this call's text is not in the ledger (ledger.text: off when it was made), "
            "so there is nothing to replay"
        )
    kind, fmt = endpoint
    body = _request(original, fmt)
    key = await _key(gateway, original.key_id)
    raw = orjson.dumps(body)
    call = Call(
        client_format=fmt,  # type: ignore[arg-type]  # a key of _REPLAYABLE: a WireFormat
        endpoint=kind,
        body=body,
        raw_body=raw,
        headers={"content-type": "application/json", "x-tollhouse-replay-of": request_id},
        request_id=new_request_id(),
        started=time.perf_counter(),
    )
    try:
        reply = await gateway.handle(call, key)
    except TollhouseError as refused:
        status = refused.status_for(call.client_format)
        call.error_type = refused.type_for(call.client_format)
        gateway.accounting.finish(call, status)
        return {
            "original": _answer_of(original),
            "replay": {"request_id": call.request_id, "status": status, "error": refused.message},
            "replayed": "the text of the messages only (no tools, images or sampling parameters)",
        }
    reply_leaving(call, reply, gateway.ledger.keeps_answer_text)
    answer = reply.body
    if reply.stream is not None:
        chunks = bytearray()
        async for chunk in reply.stream:
            chunks += chunk
        answer = bytes(chunks)
    gateway.accounting.finish(call, reply.status)
    return {
        "original": _answer_of(original),
        "replay": {
            "request_id": call.request_id,
            "status": reply.status,
            "model": call.upstream_model,
            "answer_text": answer_text(answer, call.client_format, stream=reply.stream is not None),
        },
        "replayed": "the text of the messages only (no tools, images or sampling parameters)",
    }


def _request(original: CallRecord, fmt: str) -> dict[str, Any]:
    """A request holding the messages of `original`'s `role: text` lines."""
    text = original.prompt_text or ""
    starts = list(_ROLE_LINE.finditer(text))
    if not starts:
        raise BadRequest("this call's text holds no message to replay")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for position, found in enumerate(starts):
        end = starts[position + 1].start() if position + 1 < len(starts) else len(text)
        role, content = found.group(1), text[found.end() : end].rstrip("\n")
        if role in ("system", "developer") and fmt == "anthropic":
            system.append(content)
        elif role == "tool":
            messages.append({"role": "user", "content": content})
        else:
            messages.append({"role": role, "content": content})
    body: dict[str, Any] = {
        "model": original.model_requested,
        "max_tokens": REPLAY_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = "\n".join(system)
    return body


async def _key(gateway: Gateway, key_id: str | None) -> KeyRecord | None:
    if key_id is None:
        return None
    try:
        return await gateway.keys.get(key_id)
    except KeyStoreUnavailable:
        raise
    except Exception:
        raise BadRequest(f"the call's key {key_id!r} is no longer in the key store") from None


async def _record(gateway: Gateway, request_id: str) -> CallRecord:
    records = await ledger_of(gateway).query(filters={"request_id": request_id}, limit=1)
    if not records:
        raise NotFound(
            f"no call {request_id!r} in the ledger (yet: records are written in batches)"
        )
    return records[0]


def _answer_of(record: CallRecord) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "status": record.status,
        "model": record.model_served,
        "answer_text": record.answer_text,
    }


def _row(record: CallRecord) -> dict[str, Any]:
    doc = _document(record)
    return {name: doc[name] for name in _ROW_FIELDS}


def _document(record: CallRecord) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(record)
    return doc


def _moment(params: Params, name: str) -> datetime | None:
    text = one(params, name, "")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: expected an ISO 8601 time, got {text!r}", param=name) from None
    if moment.utcoffset() is None:
        raise BadRequest(f"{name}: give the time zone (e.g. 2026-01-31T00:00:00Z)", param=name)
    return moment
