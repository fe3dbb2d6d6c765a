"""Summaries of the messages a history bound drops (stages/shape/history_bound.py), written
by a cheap model through the gateway's own path and kept in a bounded cache.

The summary is asked of the route `history.summary.model` as a call of its own: an
Anthropic Messages request made for the same key, routed, admitted (its limits and budget
count it), dispatched and recorded in the ledger like any call, so what summarising costs is
on the books. Only the dropped messages' text is sent (`role: text` lines, tool calls as
placeholders), never the client's headers.

Kept: the last `cache_entries` summaries, by what they summarise (route, length and text),
so the same dropped span is summarised once however many turns follow it. A summary that
could not be had (the summariser refused, failed or answered nothing) is None, and the
bound is applied without one: the call is served either way.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tollhouse.accounting.call_text import prompt_text
from tollhouse.call import Call
from tollhouse.config.model import HistorySummary
from tollhouse.errors import TollhouseError
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.types import Reply

log = logging.getLogger("tollhouse.shape")

INSTRUCTION = (
    "You summarise the earlier part of a conversation between a user and an assistant so "
    "that the assistant can go on without it. Keep facts, names, numbers, decisions, open "
    "questions and tool results that later turns may need. Write plain prose, no preamble."
)

# The gateway's path for a call it makes itself: route, admit, dispatch, record.
SideCall = Callable[[Call, KeyRecord | None], Awaitable[Reply]]


class HistorySummaries:
    """Summaries asked through `side_call`, cached. Bounded by the largest `cache_entries`
    of the routes that use it (each summary is at most its `max_tokens` long)."""

    def __init__(self, side_call: SideCall) -> None:
        self._side_call = side_call
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def summary(
        self, call: Call, settings: HistorySummary, dropped: list[Any], key: KeyRecord | None
    ) -> str | None:
        """The summary of `dropped` (messages of `call`'s conversation), or None."""
        transcript = prompt_text({"messages": dropped}, call.client_format)
        digest = hashlib.sha256(
            f"{settings.model}\x00{settings.max_tokens}\x00{transcript}".encode(
                "utf-8", "surrogatepass"
            )
        ).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            self.hits += 1
            return cached
        self.misses += 1
        text = await self._ask(call, settings, transcript, key)
        if text:
            self._cache[digest] = text
            while len(self._cache) > settings.cache_entries:
                self._cache.popitem(last=False)
        return text or None

    async def _ask(
        self, call: Call, settings: HistorySummary, transcript: str, key: KeyRecord | None
    ) -> str:
        body = {
            "model": settings.model,
            "max_tokens": settings.max_tokens,
            "system": INSTRUCTION,
            "messages": [{"role": "user", "content": transcript}],
        }
        side = Call(
            client_format="anthropic",
            endpoint="messages",
            body=body,
            raw_body=orjson.dumps(body),
            headers={},
        )
        side.key_id, side.end_user = call.key_id, call.end_user
        side.team, side.project = call.team, call.project
        try:
            reply = await self._side_call(side, key)
        except TollhouseError as error:
            log.warning("history summary by %s failed: %s", settings.model, error.message)
            return ""
        if reply.status != 200 or reply.stream is not None:
            log.warning("history summary by %s failed: HTTP %s", settings.model, reply.status)
            return ""
        return _answer_text(reply.body)


def _answer_text(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    content = doc.get("content") if isinstance(doc, dict) else None
    if not isinstance(content, list):
        return ""
    texts = [
        str(block.get("text", ""))
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    return "\n".join(texts).strip()
