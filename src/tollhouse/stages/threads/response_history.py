"""The OpenAI Responses API's `previous_response_id`, held by the gateway like threads.

A Responses request may continue an earlier response by its id instead of resending the
conversation. The gateway keeps every stored response (`store` is true unless the request
says false) with the conversation up to it, so `expand` (before routing) turns a
continuation back into the whole request, and any deployment, provider or format serves it:
no upstream sees `previous_response_id`. `record` (after dispatch) gives the answer an id
of the gateway's, keeps it, and a stream as it passes: its `response.completed` leaves once
the response is kept. `GET /v1/responses/{id}` answers from the same store (`stored`).

Unlike a thread's turn, a response may be continued more than once (each continuation a
branch of its own), so a stored response is not replaced by its continuation.

As history, a response's output items lose their ids (they were the upstream's or the
translator's), and a `reasoning` item is kept only with its `encrypted_content`: without
it, it names state only the upstream that made it holds.

An id the gateway holds nothing for (unknown, expired, not stored, another key's) is
refused with 404 `previous_response_not_found`, as OpenAI refuses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.call import Call
from tollhouse.errors import PreviousResponseNotFound
from tollhouse.stages.threads.held_conversations import (
    HeldConversations,
    StoreFailed,
    tenant_of,
)
from tollhouse.types import Reply, json_reply
from tollhouse.wire.responses import input_items
from tollhouse.wire.sse import SSEParser, frame_event, frame_json

_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete"})


@dataclass(slots=True)
class ResponseTurn:
    """A Responses call's place in its conversation: whose, which response it continues,
    the id its answer gets, the whole input, and whether the answer is kept."""

    tenant: str
    previous_id: str | None
    answer_id: str
    items: list[Any]
    keep: bool


class ResponseHistory:
    def __init__(self, conversations: HeldConversations) -> None:
        self.conversations = conversations

    async def expand(self, call: Call) -> None:
        """Make a Responses request the whole request it stands for; nothing for others."""
        if call.endpoint != "responses":
            return
        body = call.body
        tenant = self.conversations.tenant(call)
        items = input_items(body.get("input"))
        previous = body.get("previous_response_id")
        if isinstance(previous, str):
            stored = await self._stored(tenant, previous)
            items = [*stored.get("items", ()), *items]
            body = {k: v for k, v in body.items() if k != "previous_response_id"}
            body["input"] = items
            call.body = body
            call.raw_body = orjson.dumps(body)
        call.response_turn = ResponseTurn(
            tenant=tenant,
            previous_id=previous if isinstance(previous, str) else None,
            answer_id=f"resp_{call.request_id}",
            items=items,
            keep=self.conversations.enabled and body.get("store") is not False,
        )

    async def _stored(self, tenant: str, previous: str) -> dict[str, Any]:
        if not self.conversations.enabled:
            raise PreviousResponseNotFound(
                f"Previous response with id '{previous}' not found: this gateway keeps no "
                "responses (conversations.backend is off); send the whole conversation."
            )
        try:
            stored = await self.conversations.load(tenant, previous)
        except StoreFailed as failure:
            raise PreviousResponseNotFound(
                f"Previous response with id '{previous}' can't be read right now ({failure}); "
                "send the whole conversation."
            ) from None
        if stored is None:
            raise PreviousResponseNotFound(f"Previous response with id '{previous}' not found.")
        return stored

    async def record(self, call: Call, reply: Reply) -> Reply:
        """Give a Responses answer the gateway's id and keep it (a stream as it ends)."""
        turn = call.response_turn
        if turn is None or reply.status != 200:
            return reply
        if reply.stream is not None:
            reply.stream = self._recorded_stream(turn, reply.stream, call.degraded)
            return reply
        response = orjson.loads(reply.body)
        if isinstance(response, dict):
            self._identify(turn, response)
            reply.body = orjson.dumps(response)
            if not call.degraded:
                await self._keep(turn, response)
        return reply

    async def stored(
        self, response_id: str, key_id: str | None, headers: Mapping[str, str]
    ) -> Reply:
        """`GET /v1/responses/{id}`: the response as it was answered, for its own key."""
        response: Any = None
        if self.conversations.enabled:
            try:
                stored = await self.conversations.load(tenant_of(key_id, headers), response_id)
            except StoreFailed:
                stored = None
            response = stored.get("response") if stored is not None else None
        if not isinstance(response, dict):
            raise PreviousResponseNotFound(f"Response with id '{response_id}' not found.")
        return json_reply(response)

    def _identify(self, turn: ResponseTurn, response: dict[str, Any]) -> None:
        response["id"] = turn.answer_id
        response["previous_response_id"] = turn.previous_id

    async def _recorded_stream(
        self, turn: ResponseTurn, stream: AsyncIterator[bytes], degraded: bool
    ) -> AsyncIterator[bytes]:
        parser = SSEParser()
        try:
            async for chunk in stream:
                out: list[bytes] = []
                for event in parser.feed(chunk):
                    try:
                        doc = event.json()
                    except orjson.JSONDecodeError:
                        out.append(frame_event(event.event, event.data))
                        continue
                    response = doc.get("response") if isinstance(doc, dict) else None
                    if not isinstance(response, dict):
                        out.append(frame_event(event.event, event.data))
                        continue
                    self._identify(turn, response)
                    if doc.get("type") in _FINAL_EVENTS and not degraded:
                        await self._keep(turn, response)
                    out.append(frame_json(event.event, doc))
                if out:
                    yield b"".join(out)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _keep(self, turn: ResponseTurn, response: dict[str, Any]) -> None:
        if not turn.keep:
            return
        output = response.get("output")
        history = (
            [
                item
                for item in (as_history(o) for o in output if isinstance(o, dict))
                if item is not None
            ]
            if isinstance(output, list)
            else []
        )
        document = {"items": [*turn.items, *history], "response": response}
        await self.conversations.keep(turn.tenant, turn.answer_id, document, replaces=None)


def _as_input(content: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") == "output_text":
            text = {"type": "output_text", "text": part.get("text", "")}
            parts.append({**text, "annotations": part.get("annotations") or []})
        elif isinstance(part, dict) and part.get("type") == "refusal":
            parts.append({"type": "refusal", "refusal": part.get("refusal", "")})
    return parts


def as_history(item: dict[str, Any]) -> dict[str, Any] | None:
    """An output item as the input item of a later turn (see the module's docstring)."""
    kind = item.get("type")
    if kind == "message":
        return {"type": "message", "role": "assistant", "content": _as_input(item.get("content"))}
    if kind == "function_call":
        return {
            "type": "function_call",
            "call_id": item.get("call_id"),
            "name": item.get("name"),
            "arguments": item.get("arguments") or "",
        }
    if kind == "reasoning":
        return item if item.get("encrypted_content") else None
    return {k: v for k, v in item.items() if k not in ("id", "status")}
